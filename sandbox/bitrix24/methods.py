"""The REST methods the portal serves, over one rendered ``Portal``.

Each method takes the call's parameters (already decoded from JSON, a form or a query
string) and returns a ``MethodResult`` or raises ``ApiError`` with the portal's own error.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.bitrix24 import render as r
from sandbox.bitrix24.query import (
    PAGE_SIZE,
    ApiError,
    FieldType,
    as_list,
    compile_filter,
    compile_order,
    page,
    param,
    parse_start,
    record_matches,
    select_fields,
    sort_records,
    typed,
)
from sandbox.bitrix24.render import Portal


@dataclass
class MethodResult:
    result: Any
    total: int | None = None
    next: int | None = None
    rows: int = 0  # rows returned (for the simulated execution time)
    counted: int = 0  # rows counted for ``total``


Method = Callable[[Portal, Mapping[str, Any]], MethodResult]


def _list(
    portal: Portal,
    name: str | None,
    records: list[dict[str, Any]],
    types: Mapping[str, FieldType],
    params: Mapping[str, Any],
    *,
    standard: Sequence[str],
    custom: Sequence[str] = (),
    multiple: Sequence[str] = (),
    strict: bool = False,
) -> MethodResult:
    """An old-style ``crm.*.list``: filter, order, select, paging by 50 from ``start``.

    A list the portal holds (``name``) is filtered and sorted once per filter and order, as a
    real portal answers from its indexes, and an ``ID`` lower bound (``>ID``/``>=ID`` under
    ``order[ID]=ASC``, keyset paging) is a binary search in it: a large list read page by
    page would otherwise filter and sort every row for every page."""
    conditions = compile_filter(param(params, "filter"), types, strict=strict)
    order = compile_order(param(params, "order"), types, strict=strict)
    fields = select_fields(param(params, "select"), standard, custom, multiple)
    start = parse_start(param(params, "start"))
    if name is None:
        matching = sort_records(
            [rec for rec in records if record_matches(rec, conditions, types)], order, types
        )
        first = 0
    else:
        matching, first = _ordered(portal, name, records, types, conditions, order)
    available = len(matching) - first
    if start < 0:
        chunk, total, nxt = matching[first : first + PAGE_SIZE], 0, None
    else:
        chunk = matching[first + start : first + start + PAGE_SIZE]
        total = available
        nxt = start + PAGE_SIZE if start + PAGE_SIZE < available else None
    rows = [{f: rec.get(f) for f in fields} for rec in chunk]
    return MethodResult(rows, total, nxt, rows=len(rows), counted=available if start >= 0 else 0)


@dataclass
class Ordered:
    """The rows of a list that match a filter (an ``ID`` lower bound aside), in order."""

    rows: list[dict[str, Any]]
    ids: list[Any] | None = None  # their IDs, once a page asks for an ID bound
    comparable: bool = True  # every ID compares: a bound is a binary search


def _ordered(
    portal: Portal,
    name: str,
    records: list[dict[str, Any]],
    types: Mapping[str, FieldType],
    conditions: list[tuple[str, str, Any]],
    order: list[tuple[str, bool]],
) -> tuple[list[dict[str, Any]], int]:
    """The rows matching ``conditions`` in ``order``, and where in them the page starts."""
    bound = None
    if "ID" in types and order == [("ID", False)]:
        lower = [c for c in conditions if c[1] == "ID" and c[0] in (">", ">=")]
        if len(lower) == 1 and typed(lower[0][2], types["ID"]) is not None:
            bound = lower[0]
    rest = [c for c in conditions if c is not bound]
    key = (name, repr(rest), repr(order))
    found = portal.ordered.get(key)
    if found is None:
        found = Ordered(
            sort_records([rec for rec in records if record_matches(rec, rest, types)], order, types)
        )
        portal.ordered[key] = found
    if bound is None:
        return found.rows, 0
    if found.ids is None:
        found.ids = [typed(rec.get("ID"), types["ID"]) for rec in found.rows]
        found.comparable = all(i is not None for i in found.ids)
    if not found.comparable:
        return [rec for rec in found.rows if record_matches(rec, [bound], types)], 0
    value = typed(bound[2], types["ID"])
    search = bisect.bisect_right if bound[0] == ">" else bisect.bisect_left
    return found.rows, search(found.ids, value)


def deal_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    return _list(
        portal,
        "deals",
        portal.deals,
        r.DEAL_TYPES_BY_FIELD,
        params,
        standard=r.DEAL_STANDARD_FIELDS,
        custom=r.DEAL_CUSTOM_FIELDS,
    )


def deal_get(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    raw = param(params, "id")
    if raw in (None, "") or not str(raw).isdigit() or int(str(raw)) <= 0:
        raise ApiError(400, "", "ID is not defined or invalid.")
    for deal in portal.deals:
        if deal["ID"] == str(int(str(raw))):
            return MethodResult(dict(deal), rows=1)
    raise ApiError(400, "", "Not found")


def deal_fields(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    return MethodResult(portal.deal_fields, rows=len(portal.deal_fields))


def stage_history_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    entity_type = param(params, "entityTypeId")
    try:
        entity_type_id = int(str(entity_type))
    except ValueError:
        raise ApiError(
            400, "ENTITY_TYPE_NOT_SUPPORTED", f"Entity type `{entity_type or ''}` is not supported"
        ) from None
    if entity_type_id in (1, 5, 31):  # leads and invoices: none on this portal
        records: list[dict[str, Any]] = []
    elif entity_type_id == 2:
        records = portal.stage_history
    else:
        raise ApiError(400, "ENTITY_TYPE_NOT_SUPPORTED", f"Entity type `{entity_type_id}` is not supported")
    listed = _list(
        portal,
        f"stage_history:{entity_type_id}",
        records,
        r.STAGE_HISTORY_TYPES,
        params,
        standard=list(r.STAGE_HISTORY_TYPES),
        strict=True,
    )
    listed.result = {"items": listed.result}
    return listed


def category_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    raw = param(params, "entityTypeId")
    if raw in (None, ""):
        raise ApiError(400, "NOT_FOUND", "Smart process not found")
    if str(raw) != "2":
        if str(raw) in ("1", "3", "4", "5", "7", "31"):
            raise ApiError(400, "ENTITY_TYPE_NOT_SUPPORTED", f"Entity type `{raw}` is not supported")
        raise ApiError(400, "NOT_FOUND", "Smart process not found")
    rows = portal.categories
    return MethodResult({"categories": rows}, total=len(rows), rows=len(rows))


def status_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    types = r.STATUS_TYPES_BY_FIELD
    conditions = compile_filter(param(params, "filter"), types)
    order = compile_order(param(params, "order") or {"SORT": "ASC"}, types)
    matching = [rec for rec in portal.statuses if record_matches(rec, conditions, types)]
    if not param(params, "order"):
        # unordered: grouped by directory, each in its own SORT order
        groups: dict[str, list[dict[str, Any]]] = {}
        for rec in matching:
            groups.setdefault(rec["ENTITY_ID"], []).append(rec)
        matching = [rec for group in groups.values() for rec in sort_records(group, order, types)]
    else:
        matching = sort_records(matching, order, types)
    return MethodResult(matching, total=len(matching), rows=len(matching))


def user_get(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    """user.get: filter in FILTER/filter or, the older way, as top-level keys."""
    types = r.USER_TYPES_BY_FIELD
    raw_filter = param(params, "filter")
    if raw_filter in (None, "", []):
        raw_filter = {
            k: v
            for k, v in params.items()
            if k.upper() not in ("SORT", "ORDER", "START", "ADMIN_MODE", "AUTH", "SELECT")
        }
    if isinstance(raw_filter, dict) and "ACTIVE" in {k.upper() for k in raw_filter}:
        raw_filter = {
            k: ("Y" if str(v).lower() in ("true", "y", "1") else "N") if k.upper() == "ACTIVE" else v
            for k, v in raw_filter.items()
        }
    records = [{**u, "ACTIVE": "Y" if u["ACTIVE"] else "N"} for u in portal.users]
    conditions = compile_filter(raw_filter, types)
    sort_by = str(param(params, "sort") or "ID").upper()
    direction = str(param(params, "order") or "ASC").upper()
    order = compile_order({sort_by: direction} if sort_by in types else {}, types)
    matching = sort_records([u for u in records if record_matches(u, conditions, types)], order, types)
    start = parse_start(param(params, "start"))
    chunk, total, nxt = page(matching, start)
    by_id = {u["ID"]: u for u in portal.users}
    rows = [dict(by_id[u["ID"]]) for u in chunk]
    return MethodResult(rows, total, nxt, rows=len(rows), counted=len(matching))


def timeline_comment_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    raw = param(params, "filter")
    flt = raw if isinstance(raw, dict) else {}
    entity_id = param(flt, "ENTITY_ID")
    entity_type = param(flt, "ENTITY_TYPE")
    if entity_id in (None, "") or not str(entity_id).isdigit():
        raise ApiError(400, "", "ENTITY_ID is not defined or invalid.")
    if entity_type in (None, "") or str(entity_type).lower() not in ("deal", "lead", "contact", "company"):
        raise ApiError(400, "", "ENTITY_TYPE is not defined or invalid.")
    records = (
        portal.timeline_comments.get(str(int(str(entity_id))), [])
        if str(entity_type).lower() == "deal"
        else []
    )
    rest = {k: v for k, v in flt.items() if k.upper() not in ("ENTITY_ID", "ENTITY_TYPE")}
    order_raw = param(params, "order")
    order_raw = (
        {k: v for k, v in order_raw.items() if k.upper() in ("ID", "CREATED", "AUTHOR_ID")}
        if isinstance(order_raw, dict)
        else None
    )
    return _list(
        portal,
        None,  # one deal's few comments
        records,
        r.TIMELINE_COMMENT_TYPES,
        {
            "filter": rest,
            "order": order_raw,
            "select": param(params, "select"),
            "start": param(params, "start"),
        },
        standard=list(r.TIMELINE_COMMENT_TYPES),
    )


def company_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    standard = [f for f in portal.companies[0]] if portal.companies else list(r.COMPANY_TYPES_BY_FIELD)
    return _list(portal, "companies", portal.companies, r.COMPANY_TYPES_BY_FIELD, params, standard=standard)


def contact_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    if portal.contacts:
        standard = [f for f in portal.contacts[0] if f not in r.CONTACT_MULTIPLE_FIELDS]
    else:
        standard = [f for f in r.CONTACT_TYPES_BY_FIELD if f not in r.CONTACT_MULTIPLE_FIELDS]
    types = r.CONTACT_TYPES_BY_FIELD
    # PHONE / EMAIL filter by exact value against any of the contact's values
    raw = param(params, "filter")
    multi: dict[str, Any] = {}
    if isinstance(raw, dict):
        multi = {k.upper(): v for k, v in raw.items() if k.upper() in r.CONTACT_MULTIPLE_FIELDS}
        raw = {k: v for k, v in raw.items() if k.upper() not in r.CONTACT_MULTIPLE_FIELDS}
    records = [
        c
        for c in portal.contacts
        if all(any(item["VALUE"] in [str(x) for x in as_list(v)] for item in c[f]) for f, v in multi.items())
    ]
    return _list(
        portal,
        f"contacts:{json.dumps(multi, sort_keys=True, default=str)}",
        records,
        types,
        {**params, "filter": raw},
        standard=standard,
        multiple=r.CONTACT_MULTIPLE_FIELDS,
    )


def requisite_list(portal: Portal, params: Mapping[str, Any]) -> MethodResult:
    return _list(
        portal,
        "requisites",
        portal.requisites,
        r.REQUISITE_TYPES_BY_FIELD,
        params,
        standard=list(r.REQUISITE_TYPES_BY_FIELD),
    )


METHODS: dict[str, Method] = {
    "crm.deal.list": deal_list,
    "crm.deal.get": deal_get,
    "crm.deal.fields": deal_fields,
    "crm.stagehistory.list": stage_history_list,
    "crm.category.list": category_list,
    "crm.status.list": status_list,
    "user.get": user_get,
    "crm.timeline.comment.list": timeline_comment_list,
    "crm.company.list": company_list,
    "crm.contact.list": contact_list,
    "crm.requisite.list": requisite_list,
}
