"""The HTTP side of Megaplan API v3: tokens, the JSON-in-query parameters, the ``meta``/``data``
envelope, ``pageAfter`` paging and Megaplan's errors.

- Parameters are ONE JSON object after ``?``, percent-encoded
  (``/api/v3/deal?%7B%22limit%22%3A100%7D``); never ``?limit=100``.
- Auth: an application token is a static ``Authorization: Bearer``; the password grant
  (``POST /api/v3/auth/access_token``) gives a 48-hour token and a refresh token that the
  server rotates on every use. A 401 mid-run refreshes (or logs in again) once and retries.
- Every answer is ``{"meta": {"status", "errors", "pagination"}, "data": ...}``; ``meta.status``
  mirrors the HTTP status, and a ``meta.status`` that is not 200 is an error even under HTTP 200.
- Collections are paged with ``pageAfter`` = the link (``contentType`` + ``id``) of the last
  item of the previous page; a page shorter than ``limit`` is the last one.
- Megaplan publishes no rate limit: requests go through a limiter at the connection's
  ``requests_per_second`` (5 by default, evenly spaced), and a 429 is honoured with its
  ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from dwh.config.models import MegaplanSource
from extractors.common.errors import CredentialError, ExtractError, RetriesExhausted
from extractors.common.http import RETRY_STATUSES, ApiError, Response
from extractors.common.source_client import SourceClient

API = "/api/v3"
TOKEN_PATH = API + "/auth/access_token"
BURST = 1  # evenly spaced: never more than requests_per_second in any second

Record = dict[str, Any]


class NotFound(ExtractError):
    """The API answered 404: the entity is gone."""


class LoginRefused(CredentialError):
    """The token endpoint refused the connection's login."""


class MetaError(ExtractError):
    """A 200 whose ``meta.status`` says the request failed."""

    def __init__(self, connection: str, status: int, message: str):
        self.status = status
        super().__init__(connection, message)


def encode_params(params: Record | None) -> str:
    """``?<percent-encoded JSON>``, or nothing for no parameters."""
    if not params:
        return ""
    text = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    return "?" + quote(text, safe="")


def error_messages(body: str) -> str:
    """The ``meta.errors[].message`` of an error body (or of an OAuth error), else ''."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return ""
    if not isinstance(data, dict):
        return ""
    if isinstance(data.get("error"), str):
        return f"{data['error']}: {data.get('error_description') or ''}".strip(": ")
    meta = data.get("meta")
    errors = meta.get("errors") if isinstance(meta, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors:
        if isinstance(error, dict):
            text = str(error.get("message") or "")
            if error.get("field"):
                text = f"{text} (field {error['field']})"
            parts.append(text)
        elif error:
            parts.append(str(error))
    return "; ".join(p for p in parts if p)


def link_of(record: Any) -> Record | None:
    """``{"contentType", "id"}`` of a served entity, for ``pageAfter``."""
    if (
        isinstance(record, dict)
        and record.get("id") is not None
        and isinstance(record.get("contentType"), str)
    ):
        return {"contentType": record["contentType"], "id": record["id"]}
    return None


def _envelope_problem(response: Response) -> str | None:
    data = response.data
    if not isinstance(data, dict) or "meta" not in data or "data" not in data:
        return "a 200 without Megaplan's meta/data envelope"
    meta = data["meta"]
    status = meta.get("status", 200) if isinstance(meta, dict) else 200
    if isinstance(status, int) and status in RETRY_STATUSES:
        return f"meta.status {status}: {error_messages(response.text)}"
    return None


class MegaplanClient(SourceClient):
    """One Megaplan account (one connection of ``sources.yaml``)."""

    def __init__(
        self,
        source: MegaplanSource,
        *,
        requests_per_second: float | None = None,
        burst: int = BURST,
        clock: Callable[[], float] | None = None,
        **options: Any,
    ):
        super().__init__(
            source.name,
            requests_per_second=requests_per_second or source.requests_per_second,
            burst=burst,
            timeout=source.timeout_seconds,
            clock=clock,
            **options,
        )
        self.source = source
        self.base_url = source.base_url.rstrip("/")
        self.api = self.http_client(headers={"Accept": "application/json"})
        # the token endpoint: the same limiter and counters, no token and no refresh on 401
        self.token_api = self.http_client(headers={"Accept": "application/json"})
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.logins = 0  # password-grant logins and refreshes, for the run's metadata
        auth = source.auth
        if auth.app_token is not None:
            self.access_token = auth.app_token.get()
        else:
            self.api.on_unauthorized = self.renew
        self.api.auth_headers = self._auth_headers

    @property
    def uses_password(self) -> bool:
        return self.source.auth.app_token is None

    def _auth_headers(self) -> dict[str, str]:
        if self.access_token is None:
            self.login()
        return {"Authorization": f"Bearer {self.access_token}"}

    # -- tokens -------------------------------------------------------------------------
    def login(self) -> None:
        """The password grant: a fresh pair of tokens for the connection's user."""
        auth = self.source.auth
        assert auth.username is not None and auth.password is not None
        form = {"username": auth.username.get(), "password": auth.password.get(), "grant_type": "password"}
        self._exchange(form, "log in")

    def renew(self) -> None:
        """The access token was refused (expired): refresh it, or log in again when the refresh
        token is refused too."""
        if self.refresh_token:
            try:
                self._exchange(
                    {"grant_type": "refresh_token", "refresh_token": self.refresh_token}, "refresh"
                )
                return
            except (CredentialError, ApiError):
                self.refresh_token = None
        self.login()

    def _exchange(self, form: dict[str, str], what: str) -> None:
        url = self.base_url + TOKEN_PATH
        self.logins += 1
        try:
            response = self.token_api.request("POST", url, data=form, is_valid=_has_token)
        except CredentialError as exc:
            if what == "refresh":
                raise
            raise LoginRefused(self.source.name, self._login_refused()) from exc
        except ApiError as exc:
            if what == "refresh":
                raise
            if exc.status == 404:
                raise ExtractError(self.source.name, self._not_megaplan(url)) from exc
            raise LoginRefused(
                self.source.name,
                f"Megaplan refused to {what} (HTTP {exc.status}: {error_messages(exc.body) or 'no detail'}). "
                + self._login_refused(),
            ) from exc
        data = response.data
        self.access_token = str(data["access_token"])
        refresh = data.get("refresh_token")
        self.refresh_token = str(refresh) if refresh else None

    def _login_refused(self) -> str:
        auth = self.source.auth
        user = auth.username.env_var if auth.username else "?"
        password = auth.password.env_var if auth.password else "?"
        return (
            f"Megaplan refused the login of ${{{user}}} at {self.base_url} (password grant). Check ${{{user}}} "
            f"and ${{{password}}}: the employee must exist, be allowed to log in and have the right to read "
            "deals; or use an application token (auth.app_token)."
        )

    def _not_megaplan(self, url: str) -> str:
        return (
            f"{url.split('?', 1)[0]} answered HTTP 404: base_url must be the Megaplan account's address "
            "(https://firma.megaplan.ru, or a boxed install's host) whose API v3 lives under /api/v3"
        )

    # -- requests -----------------------------------------------------------------------
    def get(self, path: str, params: Record | None, what: str) -> Record:
        """One GET; returns the parsed envelope (``meta`` and ``data``)."""
        url = f"{self.base_url}{API}/{path}{encode_params(params)}"
        try:
            response = self.api.request("GET", url, is_valid=_envelope_problem)
        except LoginRefused:
            raise
        except CredentialError as exc:
            raise CredentialError(self.source.name, self._credential_message()) from exc
        except ApiError as exc:
            raise self._api_error(exc, what, url) from exc
        except RetriesExhausted as exc:
            detail = str(exc).removeprefix(f"{self.source.name}: ")
            raise RetriesExhausted(self.source.name, f"reading {what}: {detail}") from exc
        body: Record = response.data
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        status = meta.get("status", 200)
        if isinstance(status, int) and status != 200:
            if status == 404:
                raise NotFound(self.source.name, f"{what}: not found ({error_messages(response.text)})")
            raise MetaError(
                self.source.name,
                status,
                f"Megaplan refused the request for {what} (meta.status {status}): "
                f"{error_messages(response.text) or 'no detail'}",
            )
        return body

    def pages(self, path: str, params: Record | None, what: str, page_size: int) -> Iterator[list[Any]]:
        """A collection page by page, following ``pageAfter``. A page shorter than the limit the
        server applied (``meta.pagination.limit``, or ours) is the last; an item equal to the
        anchor (servers that read ``pageAfter`` as "starting from") is dropped."""
        anchor: Record | None = None
        while True:
            query = dict(params or {})
            query["limit"] = page_size
            if anchor is not None:
                query["pageAfter"] = anchor
            body = self.get(path, query, what)
            data = body.get("data")
            if not isinstance(data, list):
                raise ExtractError(self.source.name, f"{what}: the answer's data is not a list")
            limit = _applied_limit(body, page_size)
            items = data
            if anchor is not None and items and link_of(items[0]) == anchor:
                items = items[1:]
            if items:
                yield items
            last = link_of(data[-1]) if data else None
            if len(data) < limit or not items or last is None or last == anchor:
                return
            anchor = last

    # -- errors -------------------------------------------------------------------------
    def _credential_message(self) -> str:
        auth = self.source.auth
        if auth.app_token is not None:
            return (
                f"Megaplan refused the application token ${{{auth.app_token.env_var}}} (HTTP 401 from "
                f"{self.base_url}). The application may have been deleted or its token reissued: put the current "
                "token of the application (Megaplan: Настройки → Приложения) into that variable."
            )
        user = auth.username.env_var if auth.username else "?"
        return (
            f"Megaplan refused a fresh token of ${{{user}}} (HTTP 401 from {self.base_url} right after logging in). "
            "The employee may have lost the right to use the API or been blocked: check it in Megaplan."
        )

    def _api_error(self, exc: ApiError, what: str, url: str) -> ExtractError:
        detail = error_messages(exc.body)
        if exc.status == 404 and not detail:
            return ExtractError(self.source.name, self._not_megaplan(url))
        if exc.status == 404:
            return NotFound(self.source.name, f"{what}: not found ({detail})")
        if exc.status == 403:
            return ExtractError(
                self.source.name,
                f"Megaplan denied access to {what} (HTTP 403: {detail or 'access denied'}): give the connection's "
                "employee or application the right to read it.",
            )
        return ExtractError(
            self.source.name,
            f"Megaplan refused the request for {what} (HTTP {exc.status}): {detail or 'no detail'}",
        )


def _applied_limit(body: Record, asked: int) -> int:
    meta = body.get("meta")
    pagination = meta.get("pagination") if isinstance(meta, dict) else None
    limit = pagination.get("limit") if isinstance(pagination, dict) else None
    return min(asked, limit) if isinstance(limit, int) and limit > 0 else asked


def _has_token(response: Response) -> str | None:
    data = response.data
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("access_token"), str)
        or not data["access_token"]
    ):
        return "a token answer without access_token"
    return None
