"""The parameters of a Megaplan API v3 request: ONE JSON object after ``?`` (percent-encoded),
never ``?key=value`` pairs; and the collection paging they drive (``limit``, ``pageAfter``,
``pageBefore``, ``pageWith``, ``sortBy``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

DEFAULT_LIMIT = 100
MAX_LIMIT = 100  # a larger limit is served as this many (and said so in meta.pagination.limit)
Record = dict[str, Any]


class QueryError(Exception):
    """A request the API refuses; ``status`` 422 unless said otherwise."""

    def __init__(self, message: str, status: int = 422, field: str | None = None):
        super().__init__(message)
        self.message, self.status, self.field = message, status, field


def parse_params(raw_query: str) -> Record:
    """The request's JSON parameters (``{}`` without a query string)."""
    if not raw_query:
        return {}
    text = unquote(raw_query).strip()
    if not text.startswith("{"):
        raise QueryError(
            'Параметры запроса передаются одним JSON-объектом после «?», например /api/v3/deal?{"limit":5}'
        )
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QueryError(f"Некорректный JSON в параметрах запроса: {exc.msg} (позиция {exc.pos})") from None
    if not isinstance(params, dict):
        raise QueryError("Параметры запроса должны быть JSON-объектом")
    return params


def field_list(params: Record) -> list[str] | None:
    fields = params.get("fields")
    if fields is None:
        return None
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise QueryError("fields: ожидается массив имён полей", field="fields")
    return fields


@dataclass
class Page:
    items: list[Record]
    limit: int
    total: int


def _anchor(params: Record, name: str) -> tuple[str, str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or "id" not in value or not isinstance(value.get("contentType"), str):
        raise QueryError(f'{name}: ожидается линк-сущность {{"contentType": ..., "id": ...}}', field=name)
    return value["contentType"], str(value["id"])


def _limit(params: Record) -> int:
    limit = params.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise QueryError(f"limit: ожидается целое число больше нуля, передано {limit!r}", field="limit")
    return min(limit, MAX_LIMIT)


def sort_items(
    items: list[Record], params: Record, sortable: dict[str, Callable[[Record], Any]]
) -> list[Record]:
    """``sortBy``: ``[{"contentType": "SortField", "fieldName": "timeCreated", "desc": true}, ...]``."""
    sort_by = params.get("sortBy")
    if not sort_by:
        return items
    if not isinstance(sort_by, list):
        raise QueryError("sortBy: ожидается массив SortField", field="sortBy")
    ordered = list(items)
    for rule in reversed(sort_by):
        if not isinstance(rule, dict) or not isinstance(rule.get("fieldName"), str):
            raise QueryError(
                'sortBy: ожидается {"contentType": "SortField", "fieldName": ...}', field="sortBy"
            )
        name = rule["fieldName"]
        if name not in sortable:
            raise QueryError(f"Сортировка по полю {name} не поддерживается", field="sortBy")
        key = sortable[name]
        ordered.sort(
            key=lambda r: (key(r) is None, key(r) if key(r) is not None else 0),
            reverse=bool(rule.get("desc")),
        )
    return ordered


def page(items: list[Record], params: Record, numeric_order: bool = False) -> Page:
    """One page of ``items`` (already in the collection's order).

    ``pageAfter``: the items after the linked one; ``pageBefore``: the ``limit`` items strictly
    before it; ``pageWith``: the page (of ``limit``) that holds it. A link to an entity that is
    no longer in the collection is placed by its numeric id when the collection is in id
    order (``numeric_order``), and refused otherwise.
    """
    limit = _limit(params)
    anchors = [
        (n, a) for n in ("pageAfter", "pageBefore", "pageWith") if (a := _anchor(params, n)) is not None
    ]
    if len(anchors) > 1:
        raise QueryError("Можно передать только один из параметров pageAfter, pageBefore, pageWith")
    total = len(items)
    if not anchors:
        return Page(items[:limit], limit, total)
    name, (content_type, entity_id) = anchors[0]
    position = next(
        (
            i
            for i, r in enumerate(items)
            if r.get("contentType") == content_type and str(r.get("id")) == entity_id
        ),
        None,
    )
    if position is None:
        if not (numeric_order and entity_id.isdigit()):
            raise QueryError(f"{name}: сущность {content_type} {entity_id} не найдена", field=name)
        target = int(entity_id)
        after = next((i for i, r in enumerate(items) if _as_int(r.get("id")) > target), len(items))
        if name == "pageAfter":
            return Page(items[after : after + limit], limit, total)
        if name == "pageBefore":
            return Page(items[max(0, after - limit) : after], limit, total)
        start = (after // limit) * limit
        return Page(items[start : start + limit], limit, total)
    if name == "pageAfter":
        return Page(items[position + 1 : position + 1 + limit], limit, total)
    if name == "pageBefore":
        return Page(items[max(0, position - limit) : position], limit, total)
    start = (position // limit) * limit
    return Page(items[start : start + limit], limit, total)


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
