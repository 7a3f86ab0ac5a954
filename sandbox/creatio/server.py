"""A stand-in of one Creatio site (8.x) over its OData 4 web service.

Served at ``/0/odata`` (a site on .NET Framework, the default) or ``/odata`` (.NET Core /
.NET 6+), with cookie (forms) login at ``/ServiceModel/AuthService.svc/Login`` and an
Identity Service issuing client-credentials tokens at ``/identity/connect/token``. See
``sandbox/creatio/README.md`` for what is served and how it answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl
from xml.sax.saxutils import quoteattr

from sandbox.creatio.odata import ODataError, Query, Row, parse_query
from sandbox.creatio.render import render
from sandbox.creatio.schema import BOOLEAN, GUID, INT, EntitySet, entity_sets
from sandbox.standin import Faults, Request, Response, StandIn
from sandbox.world.model import World

LOGIN_PATH = "/ServiceModel/AuthService.svc/Login"
IDENTITY_PREFIX = "/identity"
TOKEN_PATH = IDENTITY_PREFIX + "/connect/token"
ODATA_ROOTS = {"framework": "/0/odata", "core": "/odata"}
MAX_ENTITY_ROW_COUNT = 20_000  # Creatio's default MaxEntityRowCount
TOKEN_LIFETIME = 3600.0
USERNAME = "dwh_reader"
# connection name -> the environment variables sources.yaml reads the credentials from
CREDENTIAL_ENV: dict[str, tuple[str, str, str, str]] = {
    "creatio_b2b": ("CREATIO_USER", "CREATIO_PASSWORD", "CREATIO_CLIENT_ID", "CREATIO_CLIENT_SECRET"),
}

_IIS_NOT_FOUND = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml">\n<head>\n<meta http-equiv="Content-Type" content="text/html; '
    'charset=iso-8859-1"/>\n<title>404 - File or directory not found.</title>\n</head>\n<body>\n'
    '<div id="header"><h1>Server Error</h1></div>\n<div id="content">\n <div class="content-container"><fieldset>\n'
    "  <h2>404 - File or directory not found.</h2>\n  <h3>The resource you are looking for might have been removed, "
    "had its name changed, or is temporarily unavailable.</h3>\n </fieldset></div>\n</div>\n</body>\n</html>\n"
)
_SERVICE_UNAVAILABLE = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\n'
    "<HTML><HEAD><TITLE>Service Unavailable</TITLE></HEAD><BODY><h2>Service Unavailable</h2>\n"
    "<hr><p>HTTP Error 503. The service is unavailable.</p></BODY></HTML>\n"
)


def credential_env_names(source_name: str) -> tuple[str, str, str, str]:
    """The variables holding a Creatio connection's user, password, client id and secret."""
    upper = source_name.upper()
    return CREDENTIAL_ENV.get(
        source_name, (f"{upper}_USER", f"{upper}_PASSWORD", f"{upper}_CLIENT_ID", f"{upper}_CLIENT_SECRET")
    )


def _secret(seed: int, source_name: str, what: str, length: int) -> str:
    return hashlib.sha256(f"creatio|{source_name}|{what}|{seed}".encode()).hexdigest()[:length]


def odata_error(error: ODataError) -> Response:
    return Response.json(error.status, error.body())


@dataclass
class Session:
    csrf: str
    username: str
    served: int = 0


@dataclass
class Token:
    expires_at: float
    served: int = 0


class CreatioStandIn(StandIn):
    """Creatio's OData 4 web service over one site (one ``Source`` of the world).

    ``url_form`` is where the site serves OData 4: ``framework`` (``/0/odata``) or ``core``
    (``/odata``); the other form answers IIS's HTML 404. ``max_rows`` is the site's
    MaxEntityRowCount: no answer holds more rows, whatever ``$top`` asked. ``inn_field`` is
    the Account column holding the INN (``INN`` with the Financial Services package, a
    custom ``Usr…`` column, or None). ``exposed`` names the objects exposed over OData 4
    (default: all); the others answer IIS's HTML 404.
    """

    name = "Creatio OData 4"

    def __init__(
        self,
        world: World,
        source_name: str,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        url_form: Literal["framework", "core"] = "framework",
        max_rows: int = MAX_ENTITY_ROW_COUNT,
        inn_field: str | None = "INN",
        exposed: Iterable[str] | None = None,
        token_lifetime: float = TOKEN_LIFETIME,
    ):
        super().__init__(faults or Faults(), clock)
        source = world.source(source_name)
        if source.system != "creatio":
            raise ValueError(f"source {source_name!r} is a {source.system} source, not a Creatio site")
        if url_form not in ODATA_ROOTS:
            raise ValueError(f"url_form must be one of {', '.join(ODATA_ROOTS)}, not {url_form!r}")
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.world = world
        self.source_name = source_name
        self.odata_root = ODATA_ROOTS[url_form]
        self.max_rows = max_rows
        self.inn_field = inn_field
        self.sets = entity_sets(inn_field)
        names = list(self.sets) if exposed is None else list(exposed)
        unknown = [n for n in names if n not in self.sets]
        if unknown:
            raise ValueError(f"cannot expose {', '.join(unknown)}: known objects are {', '.join(self.sets)}")
        self.exposed = [n for n in self.sets if n in names]
        self.token_lifetime = token_lifetime
        self.username = USERNAME
        self.password = _secret(world.seed, source_name, "password", 20)
        self.client_id = f"dwh-{source_name.replace('_', '-')}"
        self.client_secret = _secret(world.seed, source_name, "client-secret", 32)
        self.sessions: dict[str, Session] = {}
        self.tokens: dict[str, Token] = {}
        self.logins = 0  # successful logins and tokens issued, for tests

    def credentials(self) -> dict[str, str]:
        user, password, client_id, client_secret = credential_env_names(self.source_name)
        return {user: self.username, password: self.password, client_id: self.client_id,
                client_secret: self.client_secret}  # fmt: skip

    @property
    def base_url(self) -> str:
        """What ``sources.yaml`` calls ``base_url``: the site's root."""
        return self.url

    @property
    def identity_url(self) -> str:
        """What ``sources.yaml`` calls ``identity_url``: the Identity Service's root."""
        return self.url + IDENTITY_PREFIX

    # -- StandIn --------------------------------------------------------------------------
    def server_error(self) -> Response:
        return odata_error(ODataError(500, "An error has occurred."))

    def rate_limit_error(self) -> Response:
        """Creatio publishes no limit; an overloaded site answers 429 (the cloud's front) or
        IIS's 503 (an application pool that is busy or recycling), burst by burst."""
        if (self._seq // max(1, self.faults.burst_every)) % 2 == 1:
            return Response(429, b"Too Many Requests", "text/plain", {"Retry-After": "1"})
        return Response(503, _SERVICE_UNAVAILABLE.encode("utf-8"), "text/html")

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == LOGIN_PATH:
            return self._login(request)
        if path == TOKEN_PATH:
            return self._token(request)
        root = self.odata_root
        if path != root and not path.startswith(root + "/"):
            return _not_found()
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        if request.method != "GET":
            return odata_error(
                ODataError(405, f"The requested resource does not support http method '{request.method}'.")
            )
        try:
            return self._route(request, path[len(root) :].strip("/"))
        except ODataError as exc:
            return odata_error(exc)

    # -- auth -----------------------------------------------------------------------------
    def _login(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, b"Method not allowed", "text/plain")
        try:
            body = request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return Response(400, b"The request body must be JSON: {\"UserName\": ..., \"UserPassword\": ...}",
                            "text/plain")  # fmt: skip
        if body.get("UserName") != self.username or body.get("UserPassword") != self.password:
            return Response.json(200, _login_answer(1, "Invalid username or password specified."))
        aspxauth, csrf = secrets.token_hex(32).upper(), secrets.token_urlsafe(16)
        with self.lock:
            self.sessions[aspxauth] = Session(csrf, self.username)
            self.logins += 1
        response = Response.json(200, _login_answer(0, ""))
        response.cookies = [
            f"BPMLOADER={secrets.token_hex(12)}; path=/; HttpOnly",
            f".ASPXAUTH={aspxauth}; path=/; HttpOnly",
            f"BPMCSRF={csrf}; path=/",
            f"UserName={self.username}; path=/",
        ]
        return response

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return Response(405, b"Method not allowed", "text/plain")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # client_secret_basic
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = None
        if form.get("grant_type") != "client_credentials":
            return Response.json(400, {"error": "unsupported_grant_type"})
        if client_id != self.client_id or client_secret != self.client_secret:
            return Response.json(400, {"error": "invalid_client"})
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = Token(self.clock() + self.token_lifetime)
            self.logins += 1
        return Response.json(200, {"access_token": token, "expires_in": int(self.token_lifetime),
                                   "token_type": "Bearer", "scope": "ApplicationAccess"})  # fmt: skip

    def _refuse(self, request: Request) -> Response | None:
        """None when the request is authenticated; else the site's refusal (401, or 403 for a
        session whose BPMCSRF header is missing or wrong)."""
        expire_after = self.faults.expire_token_after
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        with self.lock:
            if scheme.lower() == "bearer":
                token = self.tokens.get(value.strip())
                if (
                    token is None
                    or token.expires_at <= self.clock()
                    or (expire_after and token.served >= expire_after)
                ):
                    self.tokens.pop(value.strip(), None)
                    return _unauthorized()
                token.served += 1
                return None
            cookies = _cookies(request.headers.get("cookie", ""))
            session = self.sessions.get(cookies.get(".ASPXAUTH", ""))
            if session is None or (expire_after and session.served >= expire_after):
                self.sessions.pop(cookies.get(".ASPXAUTH", ""), None)
                return _unauthorized()
            if request.headers.get("bpmcsrf") != session.csrf:
                return Response(403, b"403 Forbidden: the BPMCSRF header is missing or does not match the session",
                                "text/plain")  # fmt: skip
            session.served += 1
            return None

    # -- OData ----------------------------------------------------------------------------
    def _route(self, request: Request, rest: str) -> Response:
        root = f"http://{request.headers.get('host', '127.0.0.1')}{self.odata_root}"
        if rest == "":
            value = [{"name": n, "kind": "EntitySet", "url": n} for n in self.exposed]
            return Response.json(200, {"@odata.context": f"{root}/$metadata", "value": value})
        if rest == "$metadata":
            return Response(
                200, metadata_xml([self.sets[n] for n in self.exposed]).encode("utf-8"), "application/xml"
            )
        count_only = rest.endswith("/$count")
        if count_only:
            rest = rest[: -len("/$count")]
        match = re.fullmatch(r"(?P<set>[A-Za-z]\w*)(?:\((?P<key>[^)]*)\))?", rest)
        if match is None or match.group("set") not in self.exposed:
            return _not_found()
        entity_set = self.sets[match.group("set")]
        cache: dict[str, dict[str, Row]] = {}

        def lookups(set_name: str) -> dict[str, Row]:
            if set_name not in cache:
                cache[set_name] = {str(r["Id"]).lower(): r for r in self._rows(set_name)}
            return cache[set_name]

        query = parse_query(request.query, entity_set, self.sets, lookups)
        rows = self._rows(entity_set.name)
        strings = "ieee754compatible=true" in request.headers.get("accept", "").replace(" ", "").lower()
        if match.group("key") is not None:
            key = match.group("key").strip().lower()
            found = next((r for r in rows if str(r["Id"]).lower() == key), None)
            if found is None:
                raise ODataError(404, f"No resource was found for '{entity_set.name}({match.group('key')})'.")
            body = {"@odata.context": f"{root}/$metadata#{entity_set.name}/$entity"}
            body.update(self._entity(entity_set, found, query, lookups, strings))
            return Response.json(200, body)
        page, total = query.apply(rows, self.max_rows)
        if count_only:
            return Response(200, str(total).encode("ascii"), "text/plain")
        context = entity_set.name + (f"({','.join(query.select)})" if query.select else "")
        out: dict[str, Any] = {"@odata.context": f"{root}/$metadata#{context}"}
        if query.count:
            out["@odata.count"] = total
        out["value"] = [self._entity(entity_set, row, query, lookups, strings) for row in page]
        return Response.json(200, out)

    def _rows(self, set_name: str) -> list[Row]:
        with self.lock:
            return render(self.world, self.source_name, set_name, self.inn_field)

    def _entity(
        self,
        entity_set: EntitySet,
        row: Row,
        query: Query,
        lookups: Callable[[str], dict[str, Row]],
        strings: bool,
    ) -> Row:
        names = query.select if query.select is not None else entity_set.field_names()
        out = {name: _json_value(row.get(name), strings) for name in names}
        for expand in query.expand:
            assert expand.nav.target is not None
            target_set = self.sets[expand.nav.target]
            other = lookups(expand.nav.target).get(str(row.get(expand.nav.name) or "").lower())
            if other is None:
                out[expand.name] = None
                continue
            wanted = expand.select if expand.select is not None else target_set.field_names()
            out[expand.name] = {name: _json_value(other.get(name), strings) for name in wanted}
        return out


def _json_value(value: Any, strings: bool) -> Any:
    """Decimals as JSON numbers, or as strings when the client asked IEEE754Compatible=true."""
    if isinstance(value, Decimal):
        if strings:
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _login_answer(code: int, message: str) -> dict[str, Any]:
    return {
        "Code": code,
        "Message": message,
        "Exception": None,
        "PasswordChangeUrl": None,
        "RedirectUrl": None,
    }


def _cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


def _not_found() -> Response:
    return Response(404, _IIS_NOT_FOUND.encode("utf-8"), "text/html")


def _unauthorized() -> Response:
    return Response(401, b"401 - Unauthorized: Access is denied due to invalid credentials.", "text/html")


_EDM_NULLABLE = {GUID: "false", BOOLEAN: "false", INT: "false"}


def metadata_xml(sets: Iterable[EntitySet]) -> str:
    """A CSDL 4.0 document of the exposed objects."""
    sets = list(sets)
    exposed = {s.name for s in sets}
    types, containers = [], []
    for entity_set in sets:
        props = "".join(
            f"<Property Name={quoteattr(p.name)} Type={quoteattr(p.type)} "
            f"Nullable={quoteattr(_EDM_NULLABLE.get(p.type, 'true'))}/>"
            for p in entity_set.props
        )
        navs = "".join(
            f"<NavigationProperty Name={quoteattr(p.navigation or '')} Type={quoteattr('Terrasoft.Configuration.' + (p.target or ''))}>"
            f'<ReferentialConstraint Property={quoteattr(p.name)} ReferencedProperty="Id"/></NavigationProperty>'
            for p in entity_set.navigations()
            if p.target in exposed
        )
        types.append(
            f'<EntityType Name={quoteattr(entity_set.name)}><Key><PropertyRef Name="Id"/></Key>{props}{navs}</EntityType>'
        )
        containers.append(
            f"<EntitySet Name={quoteattr(entity_set.name)} EntityType={quoteattr(entity_set.qualified)}/>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
        '<Schema Namespace="Terrasoft.Configuration" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f"{''.join(types)}"
        f'<EntityContainer Name="Default">{"".join(containers)}</EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )
