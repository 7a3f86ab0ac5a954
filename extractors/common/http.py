"""The HTTP client every extractor uses: rate-limited, retrying, counting.

``ApiClient.request`` sends one logical request: it waits for the limiter before every
attempt, retries with exponential backoff and jitter on 429, 503, other 5xx, timeouts,
dropped connections and bodies that are not the JSON they should be, and gives up with a
clear error after ``max_attempts``. A 401 calls ``on_unauthorized`` once (to refresh a
token) and retries; a second 401 is a ``CredentialError``. Every attempt is counted.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from extractors.common.errors import CredentialError, ExtractError, RetriesExhausted
from extractors.common.ratelimit import Limiter

RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 521, 522, 524}


@dataclass
class RequestStats:
    requests: int = 0  # attempts sent, retries included
    retries: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    waited_seconds: float = 0.0  # in the limiter and in backoff

    def as_metadata(self) -> dict[str, Any]:
        return {"requests": self.requests, "retries": self.retries,
                "responses_by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "waited_seconds": round(self.waited_seconds, 2)}  # fmt: skip


class ApiError(ExtractError):
    """The API answered with an error that retrying will not fix."""

    def __init__(self, connection: str, status: int, detail: str, body: str = ""):
        self.status = status
        self.body = body  # the whole error body, for an API-specific message (1C's odata.error)
        super().__init__(connection, f"HTTP {status}: {detail}")


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    data: Any  # parsed JSON, or None for an empty body (204)
    text: str


class ApiClient:
    def __init__(
        self,
        connection: str,
        limiter: Limiter,
        timeout: float = 60.0,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ):
        self.connection = connection
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.sleep = sleep
        self.stats = RequestStats()
        self._random = random.Random(seed)
        self._http = httpx.Client(timeout=timeout, headers=headers or {}, auth=auth, follow_redirects=False)
        self.on_unauthorized: Callable[[], None] | None = None
        self.auth_headers: Callable[[], dict[str, str]] = dict
        # (status, body) of a retryable answer -> the least seconds to wait before the retry,
        # for limits whose reset the API announces elsewhere (Bitrix24's operating_reset_at)
        self.retry_delay: Callable[[int, str], float | None] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _backoff(self, attempt: int, retry_after: str | None, at_least: float = 0.0) -> None:
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        delay = delay / 2 + self._random.uniform(0, delay / 2)  # jitter
        if retry_after and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        delay = max(delay, at_least)
        self.stats.waited_seconds += delay
        self.sleep(delay)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        json_body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        is_valid: Callable[[Response], str | None] | None = None,
        allow_empty: bool = True,
        parse: Callable[[str], Any] | None = None,
    ) -> Response:
        """Send with retries. ``is_valid`` may inspect a 200 and return a reason to retry
        (an API-level rate-limit error inside a 200, for example). ``parse`` reads the body
        (default: JSON); an API answering XML passes its own, which raises ``ValueError`` on a
        body it cannot read, and that body is retried like invalid JSON."""
        refreshed = False
        last_problem = ""
        attempt = 0
        while attempt < self.max_attempts:
            attempt += 1
            self.limiter.acquire()
            self.stats.requests += 1
            try:
                raw = self._http.request(
                    method, url, params=params, json=json_body, data=data,
                    headers={**self.auth_headers(), **(headers or {})},
                )  # fmt: skip
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                self.limiter.done()
                last_problem = f"{type(exc).__name__} on {method} {_redact(url)}"
                self._retry(attempt, None)
                continue
            self.limiter.done()
            status = raw.status_code
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            if status == 401:
                if self.on_unauthorized and not refreshed:
                    refreshed = True
                    self.on_unauthorized()
                    attempt -= 1  # a refresh is not a failed attempt
                    continue
                raise CredentialError(
                    self.connection,
                    f"the API refused the credentials (HTTP 401 on {_redact(url)}): {_short(raw.text)}",
                )
            if status in RETRY_STATUSES:
                if status in (429, 503):
                    self.limiter.drain()
                last_problem = f"HTTP {status} on {method} {_redact(url)}: {_short(raw.text)}"
                hint = self.retry_delay(status, raw.text) if self.retry_delay else None
                self._retry(attempt, raw.headers.get("Retry-After"), hint or 0.0)
                continue
            if status >= 400:
                raise ApiError(
                    self.connection, status, f"{method} {_redact(url)}: {_short(raw.text)}", body=raw.text
                )
            text = raw.text
            if not text.strip():
                if not allow_empty and status != 204:
                    last_problem = f"an empty body on {method} {_redact(url)}"
                    self._retry(attempt, None)
                    continue
                response = Response(status, raw.headers, None, text)
            else:
                try:
                    response = Response(status, raw.headers, (parse or json.loads)(text), text)
                except ValueError:  # json.JSONDecodeError is one
                    kind = "valid JSON" if parse is None else "readable in the API's format"
                    last_problem = f"a body that is not {kind} on {method} {_redact(url)}: {_short(text)}"
                    self._retry(attempt, None)
                    continue
            problem = is_valid(response) if is_valid else None
            if problem:
                last_problem = problem
                self._retry(attempt, None)
                continue
            return response
        raise RetriesExhausted(
            self.connection, f"gave up after {self.max_attempts} attempts; last: {last_problem}"
        )

    def _retry(self, attempt: int, retry_after: str | None, at_least: float = 0.0) -> None:
        if attempt < self.max_attempts:
            self.stats.retries += 1
            self._backoff(attempt, retry_after, at_least)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _redact(url: str) -> str:
    """A Bitrix24 webhook URL carries its secret in the path: never print it."""
    parts = url.split("/rest/", 1)
    if len(parts) == 2:
        tail = parts[1].split("/")
        if len(tail) >= 3:
            return f"{parts[0]}/rest/{tail[0]}/***/{'/'.join(tail[2:])}"
    return url.split("?", 1)[0]
