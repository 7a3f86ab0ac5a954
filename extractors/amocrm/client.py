"""The HTTP side of one amoCRM account: auth, the account's limiter, HAL pages, amoCRM's errors.

Every request waits for the account's limiter (``requests_per_second`` of the connection, at
most 7); 429, 5xx, dropped connections and broken bodies are retried with backoff by the
shared client. A 401 refreshes the OAuth token once; a 403 is amoCRM's account block and
stops the connection at once; a 402 is an account whose subscription lapsed. Lists are HAL: ``_embedded.<key>`` holds the records,
``_links.next`` says there is more, and an empty list is HTTP 204 with no body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg

from dwh.config.models import AmoCRMSource
from extractors.amocrm.auth import (
    Auth,
    DeadCredential,
    LongLivedToken,
    OAuthSession,
    TokenStore,
    blocked_error,
)
from extractors.common.errors import CredentialError, ExtractError
from extractors.common.http import ApiError, RequestStats, Response
from extractors.common.ratelimit import SlidingWindowLimiter
from extractors.common.source_client import SourceClient

USER_AGENT = "lossdwh-extractor/1 (amoCRM API v4)"


@dataclass
class Page:
    records: list[Any]
    next_url: str | None  # where the next page is, rebased on the configured base URL


def _embedded_list(key: str) -> Callable[[Response], str | None]:
    def check(response: Response) -> str | None:
        if response.status == 204:
            return None
        data = response.data
        embedded = data.get("_embedded") if isinstance(data, dict) else None
        if not isinstance(embedded, dict) or not isinstance(embedded.get(key), list):
            return f"a {response.status} answer without _embedded.{key}"
        return None

    return check


class AmoClient(SourceClient):
    def __init__(
        self,
        source: AmoCRMSource,
        conn: psycopg.Connection,
        *,
        stats: RequestStats | None = None,
        limiter: SlidingWindowLimiter | None = None,
        backoff_base: float = 0.5,
        wall_clock: Callable[[], float] = time.time,
    ):
        super().__init__(
            source.name,
            timeout=source.timeout_seconds,
            limiter=limiter or SlidingWindowLimiter(source.requests_per_second),
            stats=stats,
            backoff_base=backoff_base,
            headers={"User-Agent": USER_AGENT},
        )
        self.base_url = source.base_url
        self._origin = urlsplit(self.base_url)
        self.api = self.http_client()
        self.token_api = self.http_client()
        self.auth: Auth
        if source.auth.long_lived_token is not None:
            self.auth = LongLivedToken(source)
        else:
            self.auth = OAuthSession(source, TokenStore(conn, source.name), self.token_api, wall_clock)
        self.api.auth_headers = self.auth.headers
        self.api.on_unauthorized = self.auth.on_unauthorized

    # -- requests -------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        """A path on the account, or a link the API gave, rebased on the configured base URL
        (the token is never sent anywhere else)."""
        if path_or_url.startswith("/"):
            return self.base_url + path_or_url
        link = urlsplit(path_or_url)
        if (link.scheme, link.netloc) == (self._origin.scheme, self._origin.netloc):
            return path_or_url
        prefix = self._origin.path.rstrip("/")
        path = link.path if link.path.startswith(prefix + "/") else prefix + link.path
        return f"{self._origin.scheme}://{self._origin.netloc}{path}" + (
            f"?{link.query}" if link.query else ""
        )

    def get(
        self,
        path_or_url: str,
        params: dict[str, str] | None = None,
        is_valid: Callable[[Response], str | None] | None = None,
    ) -> Response:
        url = self.url(path_or_url)
        where = "GET " + urlsplit(url).path
        self.auth.ensure_fresh()
        try:
            return self.api.request("GET", url, params=params, is_valid=is_valid, allow_empty=False)
        except DeadCredential:
            raise
        except CredentialError as exc:
            raise self.auth.refused(where, _detail(str(exc))) from None
        except ApiError as exc:
            if exc.status == 403:
                raise blocked_error(self.connection, where) from None
            if exc.status == 402:
                raise ExtractError(
                    self.connection,
                    f"amoCRM answered 402 Payment Required on {where}: the account's subscription has "
                    "lapsed and its API is closed. Renew it in amoCRM, then run again.",
                ) from None
            raise

    def page(self, path_or_url: str, key: str, params: dict[str, str] | None = None) -> Page:
        """One page of a list: the records under ``_embedded.<key>`` (none on a 204)."""
        response = self.get(path_or_url, params, is_valid=_embedded_list(key))
        if response.status == 204 or response.data is None:
            return Page([], None)
        data = response.data
        records = data["_embedded"][key]
        links = data.get("_links")
        nxt = links.get("next") if isinstance(links, dict) else None
        href = nxt.get("href") if isinstance(nxt, dict) else None
        return Page(records, self.url(href) if isinstance(href, str) and href else None)


def _detail(message: str) -> str:
    """The API's own words from a refusal, without the connection prefix."""
    return message.split(": ", 1)[-1] if ": " in message else message
