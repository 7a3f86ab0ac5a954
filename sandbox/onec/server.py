"""A stand-in of one 1C:Enterprise base published over the standard OData interface.

Served under ``/trade/odata/standard.odata/`` (``trade`` is the publication name of the
base on its web server) with HTTP Basic auth. See ``sandbox/onec/README.md`` for what is
served and how it answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from xml.sax.saxutils import escape, quoteattr

from sandbox.onec import schema
from sandbox.onec.odata import ODataQueryError, Row, parse_query
from sandbox.onec.render import render
from sandbox.onec.schema import DATETIME, ENTITY_SETS, GUID, EntitySet
from sandbox.standin import Faults, Request, Response, StandIn
from sandbox.world.model import World

PUBLICATION = "/trade/odata/standard.odata"
ONEC_USER = "odata"
# connection name -> the environment variables sources.yaml reads the credentials from
CREDENTIAL_ENV: dict[str, tuple[str, str]] = {"erp": ("ONEC_USER", "ONEC_PASSWORD")}

INTERNAL_ERROR = ("-1", "Произошла внутренняя ошибка OData сервиса")
VIEW_NOT_SUPPORTED = "3"
INVALID_URL = "6"
NOT_FOUND = ("9", "Экземпляр сущности не найден")
METHOD_FORBIDDEN = "19"

_SERVICE_UNAVAILABLE = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>503 Service Unavailable</title>\n'
    "</head><body>\n<h1>Service Unavailable</h1>\n<p>The server is temporarily unable to service your\n"
    "request due to maintenance downtime or capacity problems. Please try again later.</p>\n</body></html>\n"
)
_NOT_FOUND_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>404 Not Found</title>\n'
    "</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this server.</p>\n</body></html>\n"
)


def credential_env_names(source_name: str) -> tuple[str, str]:
    """The variables holding a 1C connection's user and password (``ONEC_*`` for ``erp``)."""
    upper = source_name.upper()
    return CREDENTIAL_ENV.get(source_name, (f"{upper}_USER", f"{upper}_PASSWORD"))


def onec_password(seed: int, source_name: str) -> str:
    return hashlib.sha256(f"onec|{source_name}|{seed}".encode()).hexdigest()[:20]


def odata_error(status: int, code: str, message: str) -> Response:
    return Response.json(status, {"odata.error": {"code": code, "message": {"lang": "ru", "value": message}}})


class OneCStandIn(StandIn):
    """1C's standard OData interface over one base (one ``Source`` of the world).

    ``published`` names the entity sets included in the OData composition (default: all);
    the others are absent from the service document and answer 404, as in a base where
    they were never published.
    """

    name = "1C OData"

    def __init__(
        self,
        world: World,
        source_name: str,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        published: Iterable[str] | None = None,
    ):
        super().__init__(faults or Faults(), clock)
        source = world.source(source_name)
        if source.system != "onec":
            raise ValueError(f"source {source_name!r} is a {source.system} source, not a 1C base")
        self.world = world
        self.source_name = source_name
        self.user = ONEC_USER
        self.password = onec_password(world.seed, source_name)
        names = list(ENTITY_SETS) if published is None else list(published)
        unknown = [n for n in names if n not in ENTITY_SETS]
        if unknown:
            raise ValueError(f"cannot publish {', '.join(unknown)}: known sets are {', '.join(ENTITY_SETS)}")
        self.published = [n for n in ENTITY_SETS if n in names]
        self._rendered: dict[str, list[Row]] = {}  # entity set -> its rows, for ``_rendered_as_of``
        self._rendered_as_of: tuple[object, ...] | None = None

    def credentials(self) -> dict[str, str]:
        user_var, password_var = credential_env_names(self.source_name)
        return {user_var: self.user, password_var: self.password}

    @property
    def base_url(self) -> str:
        """What ``sources.yaml`` calls ``base_url``."""
        return self.url + PUBLICATION

    def invalidate(self) -> None:
        """Drop the rendered sets (the world changed without its clock moving)."""
        with self.lock:
            self._rendered_as_of = None

    def rows(self, set_name: str) -> list[Row]:
        """The set's rows as of the world's current state. Rendered once per world version
        (``world.now`` and the number of deals: ``sandbox.world.advance`` moves the clock, and
        whoever changes the world holds ``self.lock``), as a base keeps its tables, not once
        per request; the rows are never changed by a request."""
        with self.lock:
            version = (self.world.now, len(self.world.deals))
            if version != self._rendered_as_of:
                self._rendered, self._rendered_as_of = {}, version
            if set_name not in self._rendered:
                self._rendered[set_name] = render(self.world, self.source_name, set_name)
            return self._rendered[set_name]

    # -- StandIn ------------------------------------------------------------------------
    def server_error(self) -> Response:
        return odata_error(500, *INTERNAL_ERROR)

    def rate_limit_error(self) -> Response:
        """1C has no rate limit; an overloaded web server in front of it answers 503."""
        return Response(503, _SERVICE_UNAVAILABLE.encode("utf-8"), "text/html")

    def handle(self, request: Request) -> Response:
        path = request.path
        if path != PUBLICATION and not path.startswith(PUBLICATION + "/"):
            return Response(404, _NOT_FOUND_PAGE.encode("utf-8"), "text/html")
        if not self._authorized(request):
            return Response(
                401,
                "Ошибка аутентификации: неверное имя пользователя или пароль".encode(),
                "text/plain",
                {"WWW-Authenticate": 'Basic realm="1C:Enterprise"'},
            )
        if request.method != "GET":
            return odata_error(
                405,
                METHOD_FORBIDDEN,
                f"Использованный HTTP-метод запрещен в данном контексте: {request.method}",
            )
        try:
            return self._route(request, path[len(PUBLICATION) :].strip("/"))
        except ODataQueryError as exc:
            return odata_error(exc.status, exc.code, exc.message)

    # -- internals ----------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return user == self.user and password == self.password

    def _route(self, request: Request, rest: str) -> Response:
        root = f"http://{request.headers.get('host', '127.0.0.1')}{PUBLICATION}/"
        if rest == "":
            return self._service_document(request, root)
        if rest == "$metadata":
            return Response(200, metadata_xml(self.published).encode("utf-8"), "application/xml")
        count = rest.endswith("/$count")
        if count:
            rest = rest[: -len("/$count")]
        match = re.fullmatch(r"(?P<set>[^(/]+)(?:\((?P<key>.*)\))?", rest)
        if match is None:
            raise ODataQueryError(INVALID_URL, f"Неверный URL: {request.path}")
        entity_set = self._published_set(match.group("set"))
        mode = _json_mode(request)
        query = parse_query(request.query, entity_set)
        rows = self.rows(entity_set.name)
        if match.group("key") is not None:
            if count:
                raise ODataQueryError(INVALID_URL, f"Неверный URL: {request.path}")
            return self._one(entity_set, match.group("key"), rows, mode, root)
        if count:
            _, total = query.apply(rows)
            return Response(200, str(total).encode("ascii"), "text/plain")
        if mode is None:
            raise _json_only()
        page, total = query.apply(rows)
        body: dict[str, object] = {}
        if mode != "nometadata":
            body["odata.metadata"] = f"{root}$metadata#{entity_set.name}"
        if query.inline_count:
            body["odata.count"] = str(total)
        body["value"] = [_entity(entity_set, row, query.select, mode) for row in page]
        return Response.json(200, body)

    def _published_set(self, name: str) -> EntitySet:
        if name not in self.published:
            code, message = NOT_FOUND
            raise ODataQueryError(
                code, f"{message}: {name} (набор не опубликован в составе OData)", status=404
            )
        return ENTITY_SETS[name]

    def _one(
        self, entity_set: EntitySet, key_text: str, rows: list[Row], mode: str | None, root: str
    ) -> Response:
        if mode is None:
            raise _json_only()
        wanted = _parse_key(entity_set, key_text)
        for row in rows:
            if all(str(row[k]).lower() == v for k, v in wanted.items()):
                body: dict[str, object] = {}
                if mode != "nometadata":
                    body["odata.metadata"] = f"{root}$metadata#{entity_set.name}/@Element"
                body.update(_entity(entity_set, row, None, mode))
                return Response.json(200, body)
        code, message = NOT_FOUND
        return odata_error(404, code, message)

    def _service_document(self, request: Request, root: str) -> Response:
        if _json_mode(request) is not None:
            value = [{"name": n, "url": n} for n in self.published]
            return Response.json(200, {"odata.metadata": f"{root}$metadata", "value": value})
        collections = "".join(
            f"<collection href={quoteattr(n)}><atom:title>{escape(n)}</atom:title></collection>"
            for n in self.published
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<service xmlns="http://www.w3.org/2007/app" xmlns:atom="http://www.w3.org/2005/Atom" '
            f"xml:base={quoteattr(root)}><workspace><atom:title>Default</atom:title>{collections}</workspace></service>"
        )
        return Response(200, xml.encode("utf-8"), "application/xml")


def _json_only() -> ODataQueryError:
    return ODataQueryError(
        VIEW_NOT_SUPPORTED,
        "Запрошенный тип представления не поддерживается: этот сервер отдаёт данные только в JSON, "
        "укажите $format=json",
    )


def _json_mode(request: Request) -> str | None:
    """The JSON flavour asked for (minimalmetadata or nometadata); None for the Atom/XML default."""
    fmt = request.arg("$format")
    if fmt is None:
        accept = request.headers.get("accept", "")
        return _media_mode(accept) if "application/json" in accept else None
    if fmt == "json":
        return "minimalmetadata"
    if fmt.startswith("application/json"):
        return _media_mode(fmt)
    if fmt in ("atom", "xml", "application/atom+xml", "application/xml"):
        return None
    raise ODataQueryError(
        VIEW_NOT_SUPPORTED, f"Запрошенный тип представления не поддерживается: $format={fmt}"
    )


def _media_mode(media: str) -> str:
    found = re.search(r"odata=(\w+)", media)
    mode = found.group(1) if found else "minimalmetadata"
    return "nometadata" if mode == "nometadata" else "minimalmetadata"


def _literal(entity_set: EntitySet, name: str, value: object) -> str:
    prop = entity_set.prop(name)
    if prop is not None and prop.type == GUID:
        return f"guid'{value}'"
    if prop is not None and prop.type == DATETIME:
        return f"datetime'{value}'"
    return f"'{value}'"


def _key_expression(entity_set: EntitySet, row: Row) -> str:
    if entity_set.is_object:
        return f"guid'{row['Ref_Key']}'"
    return ",".join(f"{k}={_literal(entity_set, k, row[k])}" for k in entity_set.keys)


def _parse_key(entity_set: EntitySet, text: str) -> dict[str, str]:
    """``guid'…'`` for objects, ``Name=guid'…',Period=datetime'…'`` for registers."""
    if entity_set.is_object:
        found = re.fullmatch(r"guid'([0-9a-fA-F-]{36})'", text.strip())
        if not found:
            raise ODataQueryError(
                "7", f"Не хватает элемента ключа сущности: ожидается ({entity_set.name}(guid'…'))"
            )
        return {"Ref_Key": found.group(1).lower()}
    pairs = dict(re.findall(r"(\w+)=(?:guid|datetime)'([^']*)'", text))
    if set(pairs) != set(entity_set.keys):
        raise ODataQueryError("7", f"Не хватает элемента ключа сущности: нужны {', '.join(entity_set.keys)}")
    return {k: v.lower() for k, v in pairs.items()}


def _entity(entity_set: EntitySet, row: Row, select: list[str] | None, mode: str | None) -> Row:
    names = select if select is not None else entity_set.field_names()
    out = {name: row[name] for name in names}
    if select is None and mode != "nometadata":
        key = _key_expression(entity_set, row)
        for ref in entity_set.references():
            nav = ref[: -len("_Key")]
            out[f"{nav}@navigationLinkUrl"] = f"{entity_set.name}({key})/{nav}"
    return out


def metadata_xml(published: Iterable[str]) -> str:
    """A CSDL document (OData v3) describing the published sets."""
    types: list[str] = []
    sets: list[str] = []
    for name in published:
        entity_set = schema.ENTITY_SETS[name]
        keys = "".join(f"<PropertyRef Name={quoteattr(k)}/>" for k in entity_set.keys)
        props = [
            f'<Property Name={quoteattr(p.name)} Type={quoteattr(p.type)} Nullable="false"/>'
            for p in entity_set.props
        ]
        for part in entity_set.table_parts:
            row_type = f"{name}_{part.name}_RowType"
            props.append(
                f"<Property Name={quoteattr(part.name)} Type={quoteattr(f'Collection(StandardODATA.{row_type})')}"
                ' Nullable="false"/>'
            )
            fields = "".join(
                f'<Property Name={quoteattr(p.name)} Type={quoteattr(p.type)} Nullable="false"/>'
                for p in part.props
            )
            types.append(f"<ComplexType Name={quoteattr(row_type)}>{fields}</ComplexType>")
        props += [
            f'<Property Name={quoteattr(p.name)} Type={quoteattr(p.type)} Nullable="false"/>'
            for p in entity_set.tail
        ]
        types.append(f"<EntityType Name={quoteattr(name)}><Key>{keys}</Key>{''.join(props)}</EntityType>")
        sets.append(f"<EntitySet Name={quoteattr(name)} EntityType={quoteattr('StandardODATA.' + name)}/>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<edmx:Edmx xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" Version="1.0">'
        '<edmx:DataServices xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
        'm:DataServiceVersion="3.0">'
        '<Schema xmlns="http://schemas.microsoft.com/ado/2009/11/edm" Namespace="StandardODATA">'
        f"{''.join(types)}"
        f'<EntityContainer Name="EnterpriseV8" m:IsDefaultEntityContainer="true">{"".join(sets)}</EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )
