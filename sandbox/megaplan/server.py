"""The Megaplan API v3 stand-in: one account of the world served over HTTP on loopback, with
the real API's paths, JSON-in-query parameters, ``pageAfter`` paging, ``meta``/``data``
envelope, tokens and error shapes (see README.md here)."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from sandbox.megaplan.auth import MegaplanAccount
from sandbox.megaplan.query import QueryError, field_list, page, parse_params, sort_items
from sandbox.megaplan.render import CARD_FIELDS, Renderer, select
from sandbox.standin import Faults, Request, Response, StandIn
from sandbox.world.model import World

API = "/api/v3"
# the account's own protection: Megaplan publishes no limit; this one is the stand-in's
REQUESTS_PER_SECOND = 10
RETRY_AFTER_SECONDS = 1
# connection name -> the environment variables sources.yaml reads the credentials from
CREDENTIAL_ENV: dict[str, tuple[str, str, str]] = {
    "megaplan_main": ("MEGAPLAN_TOKEN", "MEGAPLAN_USER", "MEGAPLAN_PASSWORD"),
}
_NOT_FOUND_PAGE = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_SORTABLE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "id": lambda r: int(r["id"]) if str(r["id"]).isdigit() else r["id"],
    "name": lambda r: r.get("name"),
    "timeCreated": lambda r: (r.get("timeCreated") or {}).get("value"),
}


def credential_env_names(source_name: str) -> tuple[str, str, str]:
    """The variables holding a connection's application token, user and password
    (``MEGAPLAN_TOKEN``/``MEGAPLAN_USER``/``MEGAPLAN_PASSWORD`` for ``megaplan_main``)."""
    upper = source_name.upper()
    return CREDENTIAL_ENV.get(source_name, (f"{upper}_TOKEN", f"{upper}_USER", f"{upper}_PASSWORD"))


def envelope(
    status: int, data: Any, pagination: dict[str, int] | None = None, errors: list[Any] | None = None
) -> Response:
    meta: dict[str, Any] = {"status": status, "errors": errors or []}
    if pagination is not None:
        meta["pagination"] = pagination
    return Response.json(status, {"meta": meta, "data": data})


def api_error(status: int, message: str, field: str | None = None) -> Response:
    error: dict[str, Any] = {"message": message}
    if field is not None:
        error["field"] = field
    return envelope(status, None, errors=[error])


class SlidingWindow:
    """At most ``limit`` requests in any ``seconds`` on the stand-in's clock."""

    def __init__(self, limit: int, seconds: float, clock: Callable[[], float]):
        self.limit, self.seconds, self.clock = limit, seconds, clock
        self.times: deque[float] = deque()
        self.lock = threading.Lock()

    def admit(self) -> bool:
        with self.lock:
            now = self.clock()
            while self.times and now - self.times[0] >= self.seconds:
                self.times.popleft()
            if len(self.times) >= self.limit:
                return False
            self.times.append(now)
            return True


class MegaplanStandIn(StandIn):
    """One Megaplan account (the connection ``source_name`` of ``world``) over HTTP.

    Every request reads the world as it is at that moment, under ``self.lock``; whoever
    changes the world holds the same lock. ``requests_per_second=None`` switches the
    account's own rate limit off (for tests that go fast on purpose).
    """

    name = "megaplan"

    def __init__(
        self,
        world: World,
        source_name: str,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        requests_per_second: int | None = REQUESTS_PER_SECOND,
        retry_after_seconds: int = RETRY_AFTER_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ):
        super().__init__(faults, clock)
        source = next((s for s in world.sources if s.name == source_name), None)
        if source is None or source.system != "megaplan":
            known = ", ".join(s.name for s in world.sources if s.system == "megaplan") or "none"
            raise ValueError(
                f"{source_name!r} is not a Megaplan source of the world (Megaplan sources: {known})"
            )
        self.world = world
        self.source_name = source_name
        self.account = MegaplanAccount(world.seed, source_name, wall_clock)
        self.window = SlidingWindow(requests_per_second, 1.0, clock) if requests_per_second else None
        self.retry_after_seconds = retry_after_seconds
        self.refused = 0  # requests refused by the account's rate limit

    # -- what a connection needs --------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        """The environment a connection to this account reads, deterministic from the seed."""
        token_var, user_var, password_var = credential_env_names(self.source_name)
        return {
            token_var: self.account.app_token,
            user_var: self.account.username,
            password_var: self.account.password,
        }

    # -- StandIn ------------------------------------------------------------------------
    def rate_limit_error(self) -> Response:
        response = api_error(429, "Слишком много запросов, повторите позже")
        response.headers["Retry-After"] = str(self.retry_after_seconds)
        return response

    def server_error(self) -> Response:
        return api_error(500, "Внутренняя ошибка сервера")

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path != API and not path.startswith(API + "/"):
            return Response(404, _NOT_FOUND_PAGE.encode(), "text/html")
        if self.window is not None and not self.window.admit():
            self.refused += 1
            return self.rate_limit_error()
        if path == API + "/auth/access_token":
            return self._token(request)
        try:
            params = parse_params(request.raw_query)
        except QueryError as exc:
            return api_error(exc.status, exc.message, exc.field)
        token = _bearer(request.headers.get("authorization")) or _string(params.get("access_token"))
        problem = self.account.check(token, self.faults.expire_token_after)
        if problem:
            return api_error(401, problem)
        if request.method != "GET":
            return api_error(405, f"Метод {request.method} не поддерживается этим стендом: он только читает")
        rest = path[len(API) :].strip("/")
        try:
            with self.lock:
                return self._route(rest, params)
        except QueryError as exc:
            return api_error(exc.status, exc.message, exc.field)

    # -- internals ----------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return Response.json(
                405, {"error": "invalid_request", "error_description": "The request method must be POST"}
            )
        answer = self.account.exchange(_form(request))
        return Response.json(answer.status, answer.payload)

    def _route(self, rest: str, params: dict[str, Any]) -> Response:
        renderer = Renderer(self.world, self.source_name)
        if rest == "deal":
            return self._deals(renderer, params)
        if rest == "deal/extraFields":
            return self._collection(renderer.deal_field_definitions(), params)
        if m := re.fullmatch(r"deal/([^/]+)(/statusHistory|/comments)?", rest):
            deal = next((d for d in renderer.deals() if d.id == m.group(1)), None)
            if deal is None:
                return api_error(404, f"Сделка {m.group(1)} не найдена")
            if m.group(2) == "/statusHistory":
                return self._collection(renderer.status_history(deal), params)
            if m.group(2) == "/comments":
                return self._collection(renderer.feed(deal), params)
            return envelope(200, self._fields_of(renderer.deal(deal, card=True), "Deal", params, renderer))
        if rest == "program":
            programs = [renderer.program(p, card=False) for p in renderer.pipelines]
            return self._collection(programs, params, "Program")
        if m := re.fullmatch(r"program/([^/]+)(/states)?", rest):
            pipeline = renderer.pipeline_by_id.get(m.group(1))
            if pipeline is None:
                return api_error(404, f"Схема сделки {m.group(1)} не найдена")
            if m.group(2):
                return self._collection(renderer.states(pipeline), params, "ProgramState")
            return envelope(200, renderer.program(pipeline, card=True))
        if rest == "employee":
            return self._collection(renderer.employees(), params, "Employee")
        if rest == "contractorCompany":
            return self._collection(renderer.contractor_companies(), params, "ContractorCompany")
        if m := re.fullmatch(r"(employee|contractorCompany|payer)/([^/]+)", rest):
            kind, entity_id = m.groups()
            if kind == "employee":
                found = next((e for e in renderer.employees() if e["id"] == entity_id), None)
            elif kind == "contractorCompany":
                found = next((c for c in renderer.contractor_companies() if c["id"] == entity_id), None)
            else:
                payers = [p for c in renderer.contractor_companies() for p in c["payers"]]
                found = next((p for p in payers if p["id"] == entity_id), None)
            if found is None:
                return api_error(404, f"Сущность {entity_id} не найдена")
            return envelope(200, found)
        return api_error(404, f"Ресурс /api/v3/{rest} не найден")

    def _deals(self, renderer: Renderer, params: dict[str, Any]) -> Response:
        fields = field_list(params)
        self._check_fields("Deal", fields, renderer)
        records = [renderer.deal(d, card=True) for d in renderer.deals()]
        ordered = sort_items(records, params, _SORTABLE)
        result = page(ordered, params, numeric_order=not params.get("sortBy"))
        only = bool(params.get("onlyRequestedFields"))
        data = [select(r, "Deal", fields, only) for r in result.items]
        return envelope(200, data, {"count": result.total, "limit": result.limit})

    def _collection(
        self, records: list[dict[str, Any]], params: dict[str, Any], content_type: str | None = None
    ) -> Response:
        fields = field_list(params)
        if content_type is not None:
            self._check_fields(content_type, fields, None)
            ordered = sort_items(records, params, _SORTABLE)
            only = bool(params.get("onlyRequestedFields"))
            result = page(ordered, params, numeric_order=not params.get("sortBy"))
            data = [select(r, content_type, fields, only) for r in result.items]
        else:  # nested collections (history, comments, field definitions) serve whole records
            result = page(records, params)
            data = result.items
        return envelope(200, data, {"count": result.total, "limit": result.limit})

    def _fields_of(
        self, record: dict[str, Any], content_type: str, params: dict[str, Any], renderer: Renderer
    ) -> dict[str, Any]:
        fields = field_list(params)
        self._check_fields(content_type, fields, renderer)
        if params.get("onlyRequestedFields") and fields:
            return {k: v for k, v in record.items() if k in ("contentType", "id", *fields)}
        return record

    @staticmethod
    def _check_fields(content_type: str, fields: list[str] | None, renderer: Renderer | None) -> None:
        known = set(CARD_FIELDS[content_type])
        if renderer is not None and content_type == "Deal":
            known |= {f["name"] for f in renderer.deal_field_definitions()}
        unknown = [f for f in fields or [] if f not in known]
        if unknown:
            raise QueryError(f"{content_type} have not this fields: {', '.join(unknown)}", field="fields")


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _form(request: Request) -> dict[str, str]:
    """The token endpoint's form fields: urlencoded or multipart."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
        )
        form: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                payload = part.get_payload(decode=True) or b""
                form[name] = payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
        return form
    return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
