"""The amoCRM API v4 stand-in: one account of the world served over HTTP on loopback, with the
real API's paths, parameters, paging, OAuth, limits and error shapes (see README.md here)."""

from __future__ import annotations

import bisect
import contextlib
import math
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sandbox.amocrm.auth import REDIRECT_URI, OAuthAccount, oauth_problem
from sandbox.amocrm.limits import AbuseGuard, SlidingWindow
from sandbox.amocrm.query import (
    ValidationFailed,
    as_int,
    in_range,
    int_list,
    int_range,
    items,
    nest,
    ordering,
    paging,
    subtree,
    with_set,
)
from sandbox.amocrm.render import Rendered, account_for, as_id, render
from sandbox.standin import Faults, Request, Response, StandIn
from sandbox.world.model import World

HAL = "application/hal+json"
PROBLEM = "application/problem+json"
REQUESTS_PER_SECOND = 7
BLOCK_AFTER_REFUSALS = 30  # more 429s than this within a minute blocks the account
ENTITY_TYPES = ("lead", "contact", "company", "customer", "task")
EVENT_TYPES = (
    "lead_added",
    "lead_deleted",
    "lead_restored",
    "lead_status_changed",
    "lead_linked",
    "lead_unlinked",
    "contact_added",
    "contact_deleted",
    "company_added",
    "company_deleted",
    "entity_responsible_changed",
    "entity_tag_added",
    "entity_tag_deleted",
    "incoming_call",
    "outgoing_call",
    "common_note_added",
    "sale_field_changed",
    "name_field_changed",
    "task_added",
    "task_completed",
)
NOTE_TYPES = (
    "common",
    "call_in",
    "call_out",
    "service_message",
    "extended_service_message",
    "message_cashier",
    "invoice_paid",
    "geolocation",
    "sms_in",
    "sms_out",
    "attachment",
)
_NGINX_PAGE = (
    "<html>\r\n<head><title>{code}</title></head>\r\n<body>\r\n<center><h1>{code}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class Outcome:
    """How the stand-in answered one request (for tests that measure a client's behaviour)."""

    at: float  # the stand-in's clock
    method: str
    path: str
    status: int
    limited: bool  # refused by the rate limit or the block, before any other check


def nginx_page(status: int, reason: str, content_type: str = "text/html") -> Response:
    return Response(status, _NGINX_PAGE.format(code=f"{status} {reason}").encode(), content_type)


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    payload = {"title": title, "type": f"https://httpstatus.es/{status}", "status": status, "detail": detail}
    return Response.json(status, {**extra, **payload}, PROBLEM)


def hal(payload: Any) -> Response:
    return Response.json(200, payload, HAL)


def no_content() -> Response:
    return Response(204, b"", HAL)


class AmoCRMStandIn(StandIn):
    """One amoCRM account (the connection ``source_name`` of ``world``) over HTTP.

    Every request reads the world as it is at that moment (under ``self.lock``); whoever
    advances the world holds the same lock. Renderings are cached per ``world.now``.
    """

    name = "amocrm"

    def __init__(
        self,
        world: World,
        source_name: str,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        requests_per_second: int = REQUESTS_PER_SECOND,
        block_after_refusals: int = BLOCK_AFTER_REFUSALS,
        wall_clock: Callable[[], float] = time.time,
        redirect_uri: str = REDIRECT_URI,
    ):
        super().__init__(faults, clock)
        source = next((s for s in world.sources if s.name == source_name), None)
        if source is None or source.system != "amocrm":
            known = ", ".join(s.name for s in world.sources if s.system == "amocrm") or "none"
            raise ValueError(
                f"{source_name!r} is not an amoCRM source of the world (amoCRM sources: {known})"
            )
        self.world = world
        self.source_name = source_name
        user_ids = [
            as_id(m.user_ids[source_name], "user") for m in world.managers if source_name in m.user_ids
        ]
        probe = account_for(world, source_name, "")
        self.oauth = OAuthAccount(
            world.seed, source_name, probe.id, min(user_ids, default=0), wall_clock, redirect_uri
        )
        self.window = SlidingWindow(requests_per_second, 1.0)
        self.guard = AbuseGuard(block_after_refusals, 60.0)
        self.outcomes: list[Outcome] = []
        self._token_uses: dict[str, int] = {}
        self._cache_key: tuple[Any, ...] | None = None
        self._cache: Rendered | None = None
        self._index: dict[tuple[Any, ...], Any] = {}  # what ``_indexed`` keeps, per rendering

    # -- what a connection needs --------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        """The environment a connection to this account reads, deterministic from the seed."""
        prefix = self.source_name.upper()
        return {
            f"{prefix}_CLIENT_ID": self.oauth.client_id,
            f"{prefix}_CLIENT_SECRET": self.oauth.client_secret,
            f"{prefix}_REFRESH_TOKEN": self.oauth.refresh_token(0),
            f"{prefix}_LONG_LIVED_TOKEN": self.oauth.long_lived_token,
        }

    @property
    def redirect_uri(self) -> str:
        return self.oauth.redirect_uri

    @property
    def blocked(self) -> bool:
        return self.guard.blocked

    def reset(self) -> None:
        """Unblock the account and forget the rate-limit history (support's "unblock")."""
        with self.lock:
            self.guard.clear()
            self.window.clear()

    def invalidate(self) -> None:
        """Drop the cached rendering (the world changed without its clock moving)."""
        with self.lock:
            self._cache_key = None

    def rendered(self) -> Rendered:
        """The account's records as of ``world.now``."""
        with self.lock:
            base = self.url if self._server else "http://127.0.0.1"
            key = (self.world.now, len(self.world.deals), base)
            if self._cache is None or key != self._cache_key:
                self._cache = render(
                    self.world, self.source_name, account_for(self.world, self.source_name, base)
                )
                self._cache_key = key
                self._index = {}
            return self._cache

    def max_accepted_in_window(self, seconds: float = 1.0) -> int:
        """The most requests let through the limits in any window of ``seconds``."""
        times = sorted(o.at for o in self.outcomes if not o.limited)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # -- faults in amoCRM's own shapes --------------------------------------------------
    def rate_limit_error(self) -> Response:
        return nginx_page(429, "Too Many Requests")

    def server_error(self) -> Response:
        return nginx_page(502, "Bad Gateway")

    # -- serving ------------------------------------------------------------------------
    @staticmethod
    def _write(h: BaseHTTPRequestHandler, response: Response) -> None:
        # headers and body leave in two writes: without TCP_NODELAY every keep-alive answer
        # waits ~40 ms for the client's delayed ACK
        with contextlib.suppress(OSError):
            h.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        StandIn._write(h, response)

    def handle(self, request: Request) -> Response:
        with self.lock:
            now = self.clock()
            limited = True
            if self.guard.blocked:
                response = nginx_page(403, "Forbidden")
            elif not self.window.admit(now):
                self.guard.refused(now)
                response = nginx_page(429, "Too Many Requests")
            else:
                limited = False
                try:
                    response = self._route(request)
                except ValidationFailed as exc:
                    response = problem(
                        400,
                        "Bad Request",
                        "Request validation failed",
                        **{
                            "validation-errors": [
                                {
                                    "request_id": "0",
                                    "errors": [{"code": exc.code, "path": exc.path, "detail": exc.detail}],
                                }
                            ]
                        },
                    )
            self.outcomes.append(Outcome(now, request.method, request.path, response.status, limited))
            return response

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path == "/oauth2/access_token":
            if request.method != "POST":
                return problem(405, "Method Not Allowed", "Use POST")
            return self._oauth(request)
        if not path.startswith("/api/v4/"):
            return problem(404, "Not Found", f"No such path: {path}")
        check = self.oauth.check_bearer(request.headers.get("authorization"))
        if check.ok and check.token_id and self.faults.expire_token_after:
            uses = self._token_uses.get(check.token_id, 0) + 1
            self._token_uses[check.token_id] = uses
            if uses > self.faults.expire_token_after:
                check.ok, check.detail = False, "Token has expired"
        if not check.ok:
            return problem(401, "Unauthorized", check.detail)
        if request.method != "GET":
            return problem(405, "Method Not Allowed", "This stand-in serves the read API only")
        data = self.rendered()
        for pattern, handler in _ROUTES:
            m = pattern.fullmatch(path)
            if m:
                return handler(self, request, data, *m.groups())
        return problem(404, "Not Found", f"No such path: {path}")

    def _oauth(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        try:
            if "application/x-www-form-urlencoded" in content_type:
                body: Any = dict(parse_qsl(request.body.decode("utf-8")))
            else:
                body = request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            answer = oauth_problem(400, "The request body must be a JSON object")
        else:
            answer = self.oauth.exchange(body)
        content = "application/json" if answer.status == 200 else PROBLEM
        return Response.json(answer.status, answer.payload, content)

    # -- lists --------------------------------------------------------------------------
    def _href(self, request: Request, page: int, limit: int) -> str:
        pairs = [(k, v) for k, v in request.query if k not in ("page", "limit")]
        pairs += [("limit", str(limit)), ("page", str(page))]
        return f"{self.url}{request.path}?{urlencode(pairs, safe='[],')}"

    def _list(
        self,
        request: Request,
        tree: dict[str, Any],
        records: list[dict[str, Any]],
        key: str,
        max_limit: int,
        *,
        totals: bool = False,
        decorate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Response:
        page, limit = paging(tree, max_limit)
        start = (page - 1) * limit
        chunk = records[start : start + limit]
        if not chunk:
            return no_content()
        links: dict[str, Any] = {"self": {"href": self._href(request, page, limit)}}
        if start + limit < len(records):
            links["next"] = {"href": self._href(request, page + 1, limit)}
        if page > 1:
            links["first"] = {"href": self._href(request, 1, limit)}
            links["prev"] = {"href": self._href(request, page - 1, limit)}
        payload: dict[str, Any] = {}
        if totals:
            payload["_total_items"] = len(records)
        payload["_page"] = page
        if totals:
            payload["_page_count"] = math.ceil(len(records) / limit)
        payload["_links"] = links
        payload["_embedded"] = {key: [decorate(r) for r in chunk] if decorate else chunk}
        return hal(payload)

    @staticmethod
    def _filtered(
        records: list[dict[str, Any]],
        f: dict[str, Any],
        request: Request,
        dates: tuple[str, ...],
        ints: tuple[str, ...],
    ) -> list[dict[str, Any]]:
        if "id" in f:
            wanted = set(int_list(f["id"], "filter.id"))
            records = [r for r in records if r["id"] in wanted]
        for name in dates:
            if name in f:
                bounds = int_range(f[name], f"filter.{name}")
                records = [r for r in records if in_range(r.get(name), bounds)]
        for name in ints:
            if name in f:
                wanted = set(int_list(f[name], f"filter.{name}"))
                records = [r for r in records if r.get(name) in wanted]
        since = request.headers.get("if-modified-since")
        if since:
            try:
                moment = int(parsedate_to_datetime(since).timestamp())
            except (TypeError, ValueError):
                raise ValidationFailed("If-Modified-Since", "Not an HTTP date", "InvalidValue") from None
            records = [r for r in records if r.get("updated_at", 0) > moment]
        return records

    def _kept(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()``, once per rendering: what an account's database keeps indexed."""
        if key not in self._index:
            self._index[key] = compute()
        return self._index[key]

    def _indexed(
        self,
        key: tuple[Any, ...],
        request: Request,
        tree: dict[str, Any],
        allowed: tuple[str, ...],
        select: Callable[[dict[str, Any]], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """``select(filter)``: the rows matching the filter in the asked order. Ordered by a time
        ascending and bounded below on that time only (keyset paging: ``order[updated_at]=asc``
        with ``filter[updated_at][from]``), the rows matching the rest of the filter are
        ordered once per rendering and the bound is a binary search in them, as an account's
        index answers; a large list read page by page would otherwise be filtered and sorted
        whole for every page. The same rows either way."""
        f = subtree(tree, "filter")
        order = ordering(tree, allowed)
        bound = f.get(order[0]) if order is not None else None
        if order is None or order[1] or not isinstance(bound, dict) or set(bound) != {"from"}:
            return select(f)
        field = order[0]
        lower, _ = int_range(bound, f"filter.{field}")
        rest = {k: v for k, v in f.items() if k != field}
        since = request.headers.get("if-modified-since")

        def ordered() -> tuple[list[dict[str, Any]], list[Any]]:
            rows = select(rest)
            return rows, [r.get(field) for r in rows]

        rows, times = self._kept((*key, repr(rest), order, since), ordered)
        if any(t is None for t in times):  # a row without the time: no binary search
            return select(f)
        return rows if lower is None else rows[bisect.bisect_left(times, lower) :]

    @staticmethod
    def _ordered(records: list[dict[str, Any]], tree: dict[str, Any], allowed: tuple[str, ...]) -> list[dict]:
        order = ordering(tree, allowed)
        if order is None:
            return records
        field, desc = order
        return sorted(records, key=lambda r: (r.get(field) or 0, r["id"]), reverse=desc)

    # -- endpoints ----------------------------------------------------------------------
    def _account(self, request: Request, data: Rendered) -> Response:
        account = account_for(self.world, self.source_name, self.url)
        created = min((lead["created_at"] for lead in data.leads), default=0)
        return hal(
            {
                "id": account.id,
                "name": f"{account.subdomain} (sandbox)",
                "subdomain": account.subdomain,
                "created_at": created,
                "created_by": 0,
                "updated_at": created,
                "updated_by": 0,
                "current_user_id": self.oauth.admin_user_id,
                "country": "RU",
                "currency": "RUB",
                "currency_symbol": "₽",
                "customers_mode": "disabled",
                "is_unsorted_on": True,
                "is_loss_reason_enabled": True,
                "is_helpbot_enabled": False,
                "is_technical_account": False,
                "contact_name_display_order": 1,
                "_links": account.links("/api/v4/account"),
            }
        )

    def _leads(self, request: Request, data: Rendered) -> Response:
        tree = nest(request.query)
        withs = with_set(tree)
        deleted = "only_deleted" in withs
        allowed = ("created_at", "updated_at", "id")

        def select(f: dict[str, Any]) -> list[dict[str, Any]]:
            records = self._filtered(
                data.deleted_leads if deleted else data.leads,
                f,
                request,
                ("created_at", "updated_at", "closed_at"),
                ("pipeline_id", "responsible_user_id", "created_by", "updated_by"),
            )
            if "statuses" in f:
                pairs = _status_pairs(f["statuses"])
                records = [r for r in records if (r.get("pipeline_id"), r.get("status_id")) in pairs]
            if "price" in f:
                bounds = int_range(f["price"], "filter.price")
                records = [r for r in records if in_range(r.get("price"), bounds)]
            return self._ordered(records, tree, allowed)

        records = self._indexed(("leads", deleted), request, tree, allowed, select)

        def decorate(lead: dict[str, Any]) -> dict[str, Any]:
            if deleted:
                return lead
            embedded = dict(lead["_embedded"])
            if "contacts" in withs:
                embedded["contacts"] = data.lead_contacts.get(lead["id"], [])
            if "loss_reason" in withs:
                embedded["loss_reason"] = data.lead_loss_reason.get(lead["id"], [])
            extra = {"source_id": None} if "source_id" in withs else {}
            return {**lead, **extra, "_embedded": embedded}

        return self._list(request, tree, records, "leads", 250, decorate=decorate)

    def _lead(self, request: Request, data: Rendered, lead_id: str) -> Response:
        for lead in data.leads:
            if lead["id"] == int(lead_id):
                withs = with_set(nest(request.query))
                embedded = dict(lead["_embedded"])
                if "contacts" in withs:
                    embedded["contacts"] = data.lead_contacts.get(lead["id"], [])
                if "loss_reason" in withs:
                    embedded["loss_reason"] = data.lead_loss_reason.get(lead["id"], [])
                return hal({**lead, "_embedded": embedded})
        return no_content()

    def _pipelines(self, request: Request, data: Rendered) -> Response:
        return hal(
            {
                "_total_items": len(data.pipelines),
                "_links": {"self": {"href": f"{self.url}/api/v4/leads/pipelines"}},
                "_embedded": {"pipelines": data.pipelines},
            }
        )

    def _pipeline(self, request: Request, data: Rendered, pipeline_id: str) -> Response:
        found = next((p for p in data.pipelines if p["id"] == int(pipeline_id)), None)
        return hal(found) if found else no_content()

    def _statuses(self, request: Request, data: Rendered, pipeline_id: str) -> Response:
        found = next((p for p in data.pipelines if p["id"] == int(pipeline_id)), None)
        if not found:
            return no_content()
        statuses = found["_embedded"]["statuses"]
        return hal(
            {
                "_total_items": len(statuses),
                "_links": {"self": {"href": f"{self.url}/api/v4/leads/pipelines/{pipeline_id}/statuses"}},
                "_embedded": {"statuses": statuses},
            }
        )

    def _loss_reasons(self, request: Request, data: Rendered) -> Response:
        tree = nest(request.query)
        return self._list(request, tree, data.loss_reasons, "loss_reasons", 250, totals=True)

    def _events(self, request: Request, data: Rendered) -> Response:
        tree = nest(request.query)
        f = subtree(tree, "filter")
        records = data.events
        types = items(f.get("type"))
        for t in types:
            if t not in EVENT_TYPES and not re.fullmatch(r"custom_field_\d+_value_changed", t):
                raise ValidationFailed(
                    "filter.type", "The value you selected is not a valid choice.", "NotSupportedChoice"
                )
        if types:
            records = self._kept(
                ("events", tuple(types)), lambda: [e for e in data.events if e["type"] in types]
            )
        entities = items(f.get("entity"))
        for e in entities:
            if e not in ENTITY_TYPES:
                raise ValidationFailed(
                    "filter.entity", "The value you selected is not a valid choice.", "NotSupportedChoice"
                )
        if entities:
            records = [e for e in records if e["entity_type"] in entities]
        if "entity_id" in f:
            ids = int_list(f["entity_id"], "filter.entity_id")
            if len(ids) > 10:
                raise ValidationFailed(
                    "filter.entity_id", "This collection should contain 10 elements or less.", "TooMany"
                )
            if len(entities) != 1:
                raise ValidationFailed(
                    "filter.entity",
                    "Filtering by entity_id needs exactly one entity type.",
                    "NotSupportedChoice",
                )
            wanted = set(ids)
            records = [e for e in records if e["entity_id"] in wanted]
        if "created_at" in f:
            bounds = int_range(f["created_at"], "filter.created_at")
            records = [e for e in records if in_range(e["created_at"], bounds)]
        if "created_by" in f:
            wanted = set(int_list(f["created_by"], "filter.created_by"))
            records = [e for e in records if e["created_by"] in wanted]
        if "id" in f:
            wanted_ids = set(items(f["id"]))
            records = [e for e in records if e["id"] in wanted_ids]
        return self._list(request, tree, records, "events", 100)

    def _notes(self, request: Request, data: Rendered, lead_id: str | None = None) -> Response:
        tree = nest(request.query)
        f = subtree(tree, "filter")
        records = data.notes
        if lead_id is not None:
            records = [n for n in records if n["entity_id"] == int(lead_id)]
        types = items(f.get("note_type"))
        for t in types:
            if t not in NOTE_TYPES:
                raise ValidationFailed(
                    "filter.note_type", "The value you selected is not a valid choice.", "NotSupportedChoice"
                )
        if types:
            records = [n for n in records if n["note_type"] in types]

        def select(f: dict[str, Any]) -> list[dict[str, Any]]:
            found = self._filtered(
                records, f, request, ("updated_at",), ("entity_id",) if lead_id is None else ()
            )
            return self._ordered(found, tree, ("updated_at", "id"))

        found = self._indexed(("notes", lead_id, tuple(types)), request, tree, ("updated_at", "id"), select)
        return self._list(request, tree, found, "notes", 250)

    def _users(self, request: Request, data: Rendered) -> Response:
        tree = nest(request.query)
        withs = with_set(tree)

        def decorate(user: dict[str, Any]) -> dict[str, Any]:
            embedded = {}
            if "role" in withs:
                embedded["roles"] = []
            if "group" in withs:
                embedded["groups"] = [{"id": 0, "name": "Отдел продаж"}]
            return {**user, "_embedded": embedded} if embedded else user

        return self._list(request, tree, data.users, "users", 250, totals=True, decorate=decorate)

    def _user(self, request: Request, data: Rendered, user_id: str) -> Response:
        found = next((u for u in data.users if u["id"] == int(user_id)), None)
        return hal(found) if found else no_content()

    def _contacts(self, request: Request, data: Rendered) -> Response:
        tree = nest(request.query)

        def select(f: dict[str, Any]) -> list[dict[str, Any]]:
            found = self._filtered(
                data.contacts, f, request, ("created_at", "updated_at"), ("responsible_user_id",)
            )
            return self._ordered(found, tree, ("updated_at", "id"))

        records = self._indexed(("contacts",), request, tree, ("updated_at", "id"), select)
        return self._list(request, tree, records, "contacts", 250)

    def _contact(self, request: Request, data: Rendered, contact_id: str) -> Response:
        found = next((c for c in data.contacts if c["id"] == int(contact_id)), None)
        return hal(found) if found else no_content()

    def _companies(self, request: Request, data: Rendered) -> Response:
        tree = nest(request.query)
        withs = with_set(tree)

        def select(f: dict[str, Any]) -> list[dict[str, Any]]:
            found = self._filtered(
                data.companies, f, request, ("created_at", "updated_at"), ("responsible_user_id",)
            )
            return self._ordered(found, tree, ("updated_at", "id"))

        records = self._indexed(("companies",), request, tree, ("updated_at", "id"), select)

        def decorate(company: dict[str, Any]) -> dict[str, Any]:
            if "contacts" not in withs:
                return company
            embedded = {**company["_embedded"], "contacts": data.company_contacts.get(company["id"], [])}
            return {**company, "_embedded": embedded}

        return self._list(request, tree, records, "companies", 250, decorate=decorate)

    def _company(self, request: Request, data: Rendered, company_id: str) -> Response:
        found = next((c for c in data.companies if c["id"] == int(company_id)), None)
        return hal(found) if found else no_content()

    def _custom_fields(self, request: Request, data: Rendered, entity: str) -> Response:
        tree = nest(request.query)
        return self._list(request, tree, data.custom_fields.get(entity, []), "custom_fields", 50, totals=True)


def _status_pairs(value: Any) -> set[tuple[int | None, int | None]]:
    """``filter[statuses][0][pipeline_id]=…&filter[statuses][0][status_id]=…`` -> pairs."""
    rows = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
    if rows is None:
        raise ValidationFailed("filter.statuses", "This value should be of type array.", "InvalidType")
    pairs = set()
    for row in rows:
        if not isinstance(row, dict) or "pipeline_id" not in row or "status_id" not in row:
            raise ValidationFailed(
                "filter.statuses", "Each item needs pipeline_id and status_id.", "InvalidType"
            )
        pairs.add(
            (
                as_int(row["pipeline_id"], "filter.statuses.pipeline_id"),
                as_int(row["status_id"], "filter.statuses.status_id"),
            )
        )
    return pairs


_Handler = Callable[..., Response]
_ROUTES: list[tuple[re.Pattern[str], _Handler]] = [
    (re.compile(r"/api/v4/account"), AmoCRMStandIn._account),
    (re.compile(r"/api/v4/leads"), AmoCRMStandIn._leads),
    (re.compile(r"/api/v4/leads/pipelines"), AmoCRMStandIn._pipelines),
    (re.compile(r"/api/v4/leads/pipelines/(\d+)"), AmoCRMStandIn._pipeline),
    (re.compile(r"/api/v4/leads/pipelines/(\d+)/statuses"), AmoCRMStandIn._statuses),
    (re.compile(r"/api/v4/leads/loss_reasons"), AmoCRMStandIn._loss_reasons),
    (re.compile(r"/api/v4/leads/notes"), AmoCRMStandIn._notes),
    (re.compile(r"/api/v4/leads/(\d+)/notes"), AmoCRMStandIn._notes),
    (re.compile(r"/api/v4/leads/(\d+)"), AmoCRMStandIn._lead),
    (re.compile(r"/api/v4/events"), AmoCRMStandIn._events),
    (re.compile(r"/api/v4/users"), AmoCRMStandIn._users),
    (re.compile(r"/api/v4/users/(\d+)"), AmoCRMStandIn._user),
    (re.compile(r"/api/v4/contacts"), AmoCRMStandIn._contacts),
    (re.compile(r"/api/v4/contacts/(\d+)"), AmoCRMStandIn._contact),
    (re.compile(r"/api/v4/companies"), AmoCRMStandIn._companies),
    (re.compile(r"/api/v4/companies/(\d+)"), AmoCRMStandIn._company),
    (re.compile(r"/api/v4/(leads|contacts|companies)/custom_fields"), AmoCRMStandIn._custom_fields),
]
