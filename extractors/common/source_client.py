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
from extractors.common.ratelimit import Limiter, TokenBucketLimiter


class SourceClient:
    def __init__(
        self,
        connection: str,
        *,
        timeout: float,
        requests_per_second: float | None = None,
        burst: int = 1,
        limiter: Limiter | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        stats: RequestStats | None = None,
        **api_options: Any,
    ):
        """The limiter: ``limiter`` when given (amoCRM's sliding window), else a token bucket of
        ``requests_per_second`` and ``burst``. ``stats``: counters shared with the caller."""
        limiter_options: dict[str, Any] = {}
        if clock is not None:
            limiter_options["clock"] = clock
        if sleep is not None:
            limiter_options["sleep"] = sleep
            api_options.setdefault("sleep", sleep)
        if limiter is None:
            if requests_per_second is None:
                raise ValueError("a limiter or requests_per_second")
            limiter = TokenBucketLimiter(requests_per_second, burst, **limiter_options)
        self.connection = connection
        self.limiter = limiter
        self._timeout = timeout
        self._api_options = api_options
        self._clients: list[ApiClient] = []
        self.stats = stats or RequestStats()

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
