"""Two quadratic spots of the Bitrix24 stand-in, answered from an index for the benchmarks.

1. List methods. ``sandbox.bitrix24.methods._list`` filters and sorts every row of a list for every page it
serves: right for the tests' small portals, quadratic for a portal of 35,000 deals and
140,000 stage changes (each of thousands of pages scans them all). A real portal answers
from database indexes. For the benchmarks only, ``install()`` replaces ``_list`` with one
that gives the same answers from a cache: the rows matching the filter (an ``ID`` lower
bound aside) sorted once per list and filter, and a binary search for the ``>ID`` / ``>=ID``
bound of keyset paging. Anything it does not recognise goes to the original.

2. A contact's creation date. ``_Renderer._contact_dates`` looks for the contact among the
deals of every deal, once per contact; the replacement indexes the deals' contacts once per
rendering and gives the same dates.

Both give exactly the stand-in's answers (checked against the originals on a sandbox world);
they only make a 100,000-deal portal answer in the time a real one would.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import sandbox.bitrix24.methods as methods
import sandbox.bitrix24.render as render
from sandbox.bitrix24.query import (
    PAGE_SIZE,
    compile_filter,
    compile_order,
    param,
    parse_start,
    record_matches,
    select_fields,
    sort_records,
    typed,
)

_ORIGINAL = methods._list
_CACHE: OrderedDict[tuple[Any, ...], tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any] | None]] = (
    OrderedDict()
)
_CACHE_SIZE = 64


def _identity(records: list[dict[str, Any]]) -> tuple[int, int, int]:
    """The same rows in the same order (a list rebuilt per call from the same rendering)."""
    if not records:
        return (0, 0, 0)
    return (len(records), id(records[0]), id(records[-1]))


def indexed_list(
    records: list[dict[str, Any]],
    types: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    standard: Sequence[str],
    custom: Sequence[str] = (),
    multiple: Sequence[str] = (),
    strict: bool = False,
) -> methods.MethodResult:
    conditions = compile_filter(param(params, "filter"), types, strict=strict)
    order = compile_order(param(params, "order"), types, strict=strict)
    fields = select_fields(param(params, "select"), standard, custom, multiple)
    start = parse_start(param(params, "start"))
    bound = None
    rest = conditions
    if "ID" in types and order == [("ID", False)]:
        lower = [c for c in conditions if c[1] == "ID" and c[0] in (">", ">=")]
        if len(lower) == 1 and typed(lower[0][2], types["ID"]) is not None:
            bound = lower[0]
            rest = [c for c in conditions if c is not bound]
    key = (_identity(records), id(types), repr(rest), repr(order))
    entry = _CACHE.get(key)
    if entry is None or (records and entry[0][0] is not records[0]):
        matching = sort_records([rec for rec in records if record_matches(rec, rest, types)], order, types)
        ids = None
        if bound is not None:
            ids = [typed(rec.get("ID"), types["ID"]) for rec in matching]
            if any(i is None for i in ids):
                return _ORIGINAL(records, types, params, standard=standard, custom=custom, multiple=multiple,
                                 strict=strict)  # fmt: skip
        entry = (list(records[:1]), matching, ids)
        _CACHE[key] = entry
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    _, matching, ids = entry
    first = 0
    if bound is not None:
        if ids is None:
            ids = [typed(rec.get("ID"), types["ID"]) for rec in matching]
            _CACHE[key] = (entry[0], matching, ids)
        value = typed(bound[2], types["ID"])
        first = bisect.bisect_right(ids, value) if bound[0] == ">" else bisect.bisect_left(ids, value)
    available = len(matching) - first
    if start < 0:
        chunk, total, nxt = matching[first : first + PAGE_SIZE], 0, None
    else:
        chunk = matching[first + start : first + start + PAGE_SIZE]
        total = available
        nxt = start + PAGE_SIZE if start + PAGE_SIZE < available else None
    rows = [{f: rec.get(f) for f in fields} for rec in chunk]
    return methods.MethodResult(rows, total, nxt, rows=len(rows), counted=available if start >= 0 else 0)


_ORIGINAL_CONTACT_DATES = render._Renderer._contact_dates


def indexed_contact_dates(self: Any, contact: Any) -> Any:
    if getattr(contact, "created_at", None) is not None:
        return _ORIGINAL_CONTACT_DATES(self, contact)
    first = self.__dict__.get("_first_deal_of_contact")
    if first is None:
        first = {}
        for deal in self.all_deals:
            created = render._aware(deal.created_at)
            for contact_id in deal.contact_ids:
                if contact_id not in first or created < first[contact_id]:
                    first[contact_id] = created
        self.__dict__["_first_deal_of_contact"] = first
    candidates = [first[contact.id]] if contact.id in first else []
    company = self.company_by_id.get(contact.company_id or "")
    if company is not None:
        candidates.append(render._aware(company.created_at))
    created = min(candidates) if candidates else self.now
    updated = getattr(contact, "updated_at", None)
    return render._aware(created), render._aware(updated or created)


def install() -> None:
    methods._list = indexed_list  # type: ignore[assignment]
    render._Renderer._contact_dates = indexed_contact_dates  # type: ignore[method-assign]
