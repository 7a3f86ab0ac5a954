"""What an API source's client is made of: one connection's limiter and its retrying HTTP clients.

A source's client subclasses ``SourceClient`` and adds its API: auth, paging, parsing. The
limiter is a token bucket at the connection's pace; ``clock`` and ``sleep`` replace the real
ones together (tests and benchmarks run on a compressed clock), and every HTTP client made by
``http_client`` shares the limiter and the request counters, so a token endpoint's requests
count against the same limit as the data's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from extractors.common.http import ApiClient, RequestStats
from extractors.common.ratelimit import TokenBucketLimiter


class SourceClient:
    def __init__(
        self,
        connection: str,
        *,
        requests_per_second: float,
        burst: int,
        timeout: float,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        **api_options: Any,
    ):
        limiter_options: dict[str, Any] = {}
        if clock is not None:
            limiter_options["clock"] = clock
        if sleep is not None:
            limiter_options["sleep"] = sleep
            api_options.setdefault("sleep", sleep)
        self.connection = connection
        self.limiter = TokenBucketLimiter(requests_per_second, burst, **limiter_options)
        self._timeout = timeout
        self._api_options = api_options
        self._clients: list[ApiClient] = []
        self.stats = RequestStats()

    def http_client(self, **options: Any) -> ApiClient:
        """A retrying client on this connection's limiter and counters; closed with this one."""
        client = ApiClient(
            self.connection, self.limiter, timeout=self._timeout, **{**self._api_options, **options}
        )
        client.stats = self.stats
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
