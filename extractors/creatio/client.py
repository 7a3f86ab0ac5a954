"""The HTTP side of Creatio's OData 4 web service: login, paging within the site's row cap,
Creatio's errors.

Two ways in, one per connection (``dwh.config.models.CreatioSource``):

- cookie (forms) login: ``POST <base_url>/ServiceModel/AuthService.svc/Login`` with the user
  and password; the answer's cookies (``BPMLOADER``, ``.ASPXAUTH``, ``BPMCSRF``, ``UserName``)
  go with every request, and the ``BPMCSRF`` cookie's value also as the ``BPMCSRF`` header;
- OAuth 2.0 client credentials: ``POST <identity_url>/connect/token`` gives a Bearer token.

A 401 (the session or token expired mid-run) logs in again once and repeats the request; a
403 in cookie mode (the BPMCSRF check) does the same once before it is an error.

Reads are paged with ``$top``/``$skip``. Changed records are read in ``ModifiedOn, Id`` order
with a keyset: each page asks ``ModifiedOn ge <the last ModifiedOn seen>`` and skips only the
rows already seen at exactly that moment, so a record written while the read goes on moves to
the end of the read instead of shifting a page, and nothing is skipped. A site answers at
most ``MaxEntityRowCount`` rows (20,000 by default) whatever ``$top`` asks: the first page
asks ``$count=true``, and a page shorter than asked while more rows match means the site cut
it; the client then pages at the size the site answered.

Creatio publishes no rate limit: requests go through a modest limiter (``requests_per_second``
of the connection, 5 by default, no burst), and 429/503 answers are retried with backoff.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dwh.config.models import CreatioSource
from extractors.common.errors import CredentialError, ExtractError, RetriesExhausted
from extractors.common.http import ApiError, Response
from extractors.common.source_client import SourceClient
from extractors.creatio.sets import odata_instant, parse_instant

LOGIN_PATH = "/ServiceModel/AuthService.svc/Login"
TOKEN_PATH = "/connect/token"
BURST = 1  # no burst: never more than requests_per_second in any second
TOKEN_MARGIN_SECONDS = 60.0  # a token this close to its end is renewed before it is used
DEFAULT_TOKEN_SECONDS = 3600.0  # when the Identity Service does not say
# characters left as they are in a query value: OData's literal syntax reads better unescaped
_QUERY_SAFE = "$,'():"
# the query string of a request by keys stays under this many characters (IIS refuses query
# strings over 2,048 by default)
MAX_FILTER_CHARS = 1800
KEYSET_ORDER = "ModifiedOn asc,Id asc"


class UnexposedError(ExtractError):
    """The site does not serve an object over OData 4."""


class LoginRefused(CredentialError):
    """The login (or the token request) itself was refused: the credentials are wrong."""


def creatio_error(body: str) -> str | None:
    """The message of Creatio's ``{"error": {...}}`` body, with the cause Creatio puts two
    levels down (``innererror`` / ``internalexception``); None when the body is not one."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    messages: list[str] = []
    node: Any = error
    while isinstance(node, dict):
        message = node.get("message")
        if isinstance(message, str) and message and message not in messages:
            messages.append(message)
        node = node.get("innererror") or node.get("internalexception")
    generic = "An error has occurred."
    causes = [m for m in messages if m != generic] or messages
    return "; ".join(causes) if causes else "(no message)"


def _has_value_list(response: Response) -> str | None:
    data = response.data
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        return "a 200 whose JSON has no 'value' list"
    return None


def id_chunks(ids: Sequence[str], budget: int = MAX_FILTER_CHARS) -> Iterator[list[str]]:
    """``ids`` in groups whose ``Id eq … or Id eq …`` filter fits ``budget`` characters."""
    group: list[str] = []
    size = 0
    for key in ids:
        length = len(f"Id%20eq%20{key}%20or%20")
        if group and size + length > budget:
            yield group
            group, size = [], 0
        group.append(key)
        size += length
    if group:
        yield group


class CookieLogin:
    """Forms authentication: a session of cookies and its BPMCSRF token."""

    refresh_on_forbidden = True

    def __init__(self, client: CreatioClient, source: CreatioSource):
        assert source.username is not None and source.password is not None
        self.client, self.source = client, source
        self.username, self.password = source.username, source.password
        self.cookies: dict[str, str] = {}

    def ready(self) -> bool:
        return bool(self.cookies)

    def headers(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        out = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if "BPMCSRF" in self.cookies:
            out["BPMCSRF"] = self.cookies["BPMCSRF"]
        return out

    def login(self) -> None:
        self.cookies = {}
        url = self.client.base_url + LOGIN_PATH
        response = self.client.api.request(
            "POST",
            url,
            json_body={"UserName": self.username.get(), "UserPassword": self.password.get()},
            headers={"Content-Type": "application/json"},
            is_valid=lambda r: (
                None if isinstance(r.data, dict) and "Code" in r.data else "a login answer without Code"
            ),
        )
        code, message = response.data.get("Code"), response.data.get("Message") or ""
        if code != 0:
            raise LoginRefused(self.source.name, self.refused(f"{url} answered Code {code}: {message}"))
        cookies = {}
        for header in response.headers.get_list("set-cookie"):
            name, _, value = header.split(";", 1)[0].strip().partition("=")
            if name:
                cookies[name] = value
        if ".ASPXAUTH" not in cookies or "BPMCSRF" not in cookies:
            raise ExtractError(
                self.source.name,
                f"the login at {url} succeeded but set no session cookies (.ASPXAUTH, BPMCSRF): found "
                f"{', '.join(sorted(cookies)) or 'none'}; base_url must be the site's root",
            )
        self.cookies = cookies

    def refused(self, detail: str) -> str:
        return (
            f"Creatio refused the login ({detail}). Check ${{{self.username.env_var}}} and "
            f"${{{self.password.env_var}}}: the user must exist on the site, be active, and the password "
            "must be current."
        )

    def unauthorized(self, detail: str) -> str:
        return (
            f"Creatio refused the session right after a fresh login ({detail}). The user in "
            f"${{{self.username.env_var}}} must be allowed to use the OData web service."
        )


class ClientCredentials:
    """OAuth 2.0 client credentials from the site's Identity Service."""

    refresh_on_forbidden = False

    def __init__(self, client: CreatioClient, source: CreatioSource, clock: Callable[[], float]):
        assert source.client_id is not None and source.client_secret is not None and source.identity_url
        self.client, self.source, self.clock = client, source, clock
        self.client_id, self.client_secret = source.client_id, source.client_secret
        self.token_url = source.identity_url.rstrip("/") + TOKEN_PATH
        self.token: str | None = None
        self.expires_at = 0.0

    def ready(self) -> bool:
        return self.token is not None and self.clock() < self.expires_at - TOKEN_MARGIN_SECONDS

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def login(self) -> None:
        self.token = None
        try:
            response = self.client.api.request(
                "POST",
                self.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id.get(),
                    "client_secret": self.client_secret.get(),
                },
                is_valid=lambda r: (
                    None
                    if isinstance(r.data, dict) and isinstance(r.data.get("access_token"), str)
                    else "a token answer without access_token"
                ),
            )
        except ApiError as exc:
            if exc.status in (400, 401, 403):
                detail = _oauth_error(exc.body) or f"HTTP {exc.status}"
                raise LoginRefused(self.source.name, self.refused(detail)) from exc
            raise
        data = response.data
        self.token = data["access_token"]
        lifetime = data.get("expires_in")
        seconds = (
            float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else DEFAULT_TOKEN_SECONDS
        )
        self.expires_at = self.clock() + seconds

    def refused(self, detail: str) -> str:
        return (
            f"the Identity Service at {self.token_url} refused the client ({detail}). Check "
            f"${{{self.client_id.env_var}}} and ${{{self.client_secret.env_var}}}: the OAuth client "
            "(client credentials grant) must be registered on the site and active, and identity_url "
            "must be the site's Identity Service."
        )

    def unauthorized(self, detail: str) -> str:
        return (
            f"Creatio refused a fresh token ({detail}). The OAuth client in ${{{self.client_id.env_var}}} "
            "must be bound to a user allowed to use the OData web service."
        )


def _oauth_error(body: str) -> str | None:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return None
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"]) + (
            f": {data['error_description']}" if data.get("error_description") else ""
        )
    return None


class CreatioClient(SourceClient):
    """One Creatio site (one connection of ``sources.yaml``)."""

    def __init__(
        self,
        source: CreatioSource,
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
        self.root = self.base_url + source.odata_root
        self.api = self.http_client(headers={"Accept": "application/json", "ForceUseSession": "true"})
        self.auth: CookieLogin | ClientCredentials = (
            CookieLogin(self, source)
            if source.username is not None
            else ClientCredentials(self, source, clock or time.monotonic)
        )
        self.api.auth_headers = self.auth.headers
        self.api.on_unauthorized = self._login_again
        self.logins = 0
        self.caps: dict[str, int] = {}  # set -> the row cap the site turned out to have
        self._logging_in = False

    # -- auth -----------------------------------------------------------------------------
    def login(self) -> None:
        if self._logging_in:
            raise LoginRefused(self.source.name, self.auth.refused("the login itself answered HTTP 401"))
        self._logging_in = True
        try:
            self.auth.login()
            self.logins += 1
        finally:
            self._logging_in = False

    def _login_again(self) -> None:
        """A 401: the session or token expired mid-run."""
        self.login()

    # -- requests -----------------------------------------------------------------------
    def url(self, set_name: str, options: dict[str, str]) -> str:
        query = "&".join(f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in options.items())
        return f"{self.root}/{set_name}" + (f"?{query}" if query else "")

    def get(self, set_name: str, options: dict[str, str], what: str) -> Response:
        """One GET of a set, with Creatio's errors turned into messages a person can act on."""
        url = self.url(set_name, options)
        retried_forbidden = False
        while True:
            if not self.auth.ready():
                self.login()
            try:
                return self.api.request("GET", url, is_valid=_has_value_list)
            except LoginRefused:
                raise
            except CredentialError as exc:
                detail = f"HTTP 401 on {self.root}/{set_name}"
                raise CredentialError(self.source.name, self.auth.unauthorized(detail)) from exc
            except ApiError as exc:
                if exc.status == 403 and self.auth.refresh_on_forbidden and not retried_forbidden:
                    retried_forbidden = True
                    self.login()  # the BPMCSRF token may have been renewed: a fresh session
                    continue
                raise self._api_error(exc, set_name, what) from exc
            except RetriesExhausted as exc:
                detail = str(exc).removeprefix(f"{self.source.name}: ")
                raise RetriesExhausted(self.source.name, f"reading {what}: {detail}") from exc

    # -- paging ---------------------------------------------------------------------------
    def modified_pages(
        self, set_name: str, *, since: datetime | None, base_filter: str | None, page_size: int
    ) -> Iterator[list[Any]]:
        """The set's records with ``ModifiedOn`` at or after ``since`` (all with None), page by
        page in ``ModifiedOn, Id`` order (a keyset; see the module's docstring)."""
        mark, ties = since, 0
        size, confirmed = self.caps.get(set_name, page_size), set_name in self.caps
        while True:
            clauses = [f"({base_filter})"] if base_filter else []
            if mark is not None:
                clauses.append(f"ModifiedOn ge {odata_instant(mark)}")
            options = {"$orderby": KEYSET_ORDER, "$top": str(size)}
            if clauses:
                options["$filter"] = " and ".join(clauses)
            skip = ties
            if skip:
                options["$skip"] = str(skip)
            if not confirmed:
                options["$count"] = "true"
            data = self.get(set_name, options, set_name).data
            rows = data["value"]
            yield rows
            for row in rows:
                moment = parse_instant(row.get("ModifiedOn")) if isinstance(row, dict) else None
                if moment is not None and (mark is None or moment > mark):
                    mark, ties = moment, 1
                elif moment is not None and moment == mark:
                    ties += 1
                elif mark is None:
                    ties += 1  # no ModifiedOn: counted only while no ModifiedOn filter is sent
            size, confirmed, done = self._after_page(set_name, size, confirmed, skip, rows, data)
            if done:
                return

    def key_pages(self, set_name: str, *, base_filter: str | None, page_size: int) -> Iterator[list[Any]]:
        """Only the ``Id`` of every record of the set (``$select=Id``), page by page."""
        skip = 0
        size, confirmed = min(page_size, self.caps.get(set_name, page_size)), set_name in self.caps
        while True:
            options = {"$select": "Id", "$orderby": "Id asc", "$top": str(size)}
            if base_filter:
                options["$filter"] = base_filter
            if skip:
                options["$skip"] = str(skip)
            if not confirmed:
                options["$count"] = "true"
            data = self.get(set_name, options, f"the keys of {set_name}").data
            rows = data["value"]
            yield rows
            size, confirmed, done = self._after_page(set_name, size, confirmed, skip, rows, data)
            if done:
                return
            skip += len(rows)

    def _after_page(
        self, set_name: str, size: int, confirmed: bool, skip: int, rows: list[Any], data: dict[str, Any]
    ) -> tuple[int, bool, bool]:
        """-> (the next page size, whether it is known to be served whole, whether the read is done)."""
        if len(rows) >= size:
            return size, True, False
        total = data.get("@odata.count")
        if confirmed or not isinstance(total, int) or skip + len(rows) >= total or not rows:
            return size, confirmed, True
        # the site cut the page at its MaxEntityRowCount: page at that size from now on
        self.caps[set_name] = len(rows)
        return len(rows), True, False

    def by_ids(self, set_name: str, ids: Sequence[str], select: str | None = None) -> Iterator[list[Any]]:
        """The records among ``ids`` the site still has, a URL-sized group of keys per request."""
        for group in id_chunks(ids):
            options = {"$filter": " or ".join(f"Id eq {key}" for key in group), "$orderby": "Id asc",
                       "$top": str(len(group))}  # fmt: skip
            if select:
                options["$select"] = select
            yield self.get(set_name, options, f"{set_name} by key").data["value"]

    # -- errors ---------------------------------------------------------------------------
    def _api_error(self, exc: ApiError, set_name: str, what: str) -> ExtractError:
        name = self.source.name
        message = creatio_error(exc.body)
        if exc.status == 404 and message is None:
            if self._service_document_answers():
                return UnexposedError(
                    name,
                    f"the site does not serve {set_name} over OData 4 (the web server answered its HTML 404 page "
                    f"for {self.root}/{set_name}): the object must exist under that name and be available to "
                    "the connection's user; nothing more was extracted from this site.",
                )
            return ExtractError(
                name,
                f"{self.root} is not the site's OData 4 service (the web server answered its HTML 404 page). "
                "A site on .NET Framework (IIS) serves it at <base_url>/0/odata (odata_root: /0/odata, the "
                "default); a site on .NET Core / .NET 6+ at <base_url>/odata (set odata_root: /odata).",
            )
        if exc.status == 403:
            return ExtractError(
                name,
                f"Creatio refused {what} with HTTP 403 even in a fresh session: the connection's user has no right "
                f"to read {set_name}, or the site refused the BPMCSRF token.",
            )
        if message is not None:
            return ExtractError(
                name, f"Creatio refused the request for {what} (HTTP {exc.status}): {message}"
            )
        return ExtractError(name, f"reading {what}: {str(exc).removeprefix(f'{name}: ')}")

    def _service_document_answers(self) -> bool:
        try:
            self.api.request("GET", self.root + "/", is_valid=_has_value_list)
        except ExtractError:
            return False
        return True
