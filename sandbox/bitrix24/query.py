"""Parameters the way Bitrix24 reads them: PHP-style query strings, case-insensitive names,
and the ``filter`` / ``order`` / ``select`` / ``start`` of the list methods.

Records reach this module already rendered (every value a string, as the API serves it);
comparisons parse them back by the field's type, so ``>ID`` compares numbers and
``>=DATE_MODIFY`` compares instants, as the real portal's SQL does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from typing import Any, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

PAGE_SIZE = 50
PORTAL_TZ = ZoneInfo("Europe/Moscow")

FieldType = Literal["int", "float", "datetime", "date", "str"]

# longest first: "!=%" must win over "!=" and "!"
_PREFIXES = ("!=%", "!%=", ">=", "<=", "!@", "!=", "!%", "=%", "%=", ">", "<", "@", "!", "%", "=")


class ApiError(Exception):
    """An error answer: ``{"error": code, "error_description": description}`` with ``status``."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(f"{status} {code}: {description}")
        self.status, self.code, self.description = status, code, description

    def payload(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.description}


# -- PHP-style parameters -------------------------------------------------------------------
def parse_php_query(query: str) -> dict[str, Any]:
    """``a=1&filter[>ID]=5&select[]=ID&select[]=TITLE`` -> nested dicts, as PHP builds $_GET.

    Lists come out as dicts keyed "0", "1", ... (PHP arrays); ``as_list`` flattens them.
    """
    out: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query, keep_blank_values=True):
        head, _, rest = raw_key.partition("[")
        if not rest:
            out[raw_key] = value
            continue
        parts = [head] + re.findall(r"\[([^\]]*)\]", "[" + rest)
        node: dict[str, Any] = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # "x[]": the next free integer key
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return out


def as_list(value: Any) -> list[Any]:
    """A select/IN value as a list: JSON lists, PHP arrays (dicts) and scalars alike."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def param(params: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """``params[name]`` ignoring case (the CRM methods upper-case parameter names)."""
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if key.lower() == lowered:
            return value
    return default


def php_array(items: Mapping[str, Any]) -> Any:
    """How PHP's json_encode writes an array: [] when empty, a list when keyed 0..n-1."""
    if not items:
        return []
    if list(items) == [str(i) for i in range(len(items))]:
        return list(items.values())
    return dict(items)


# -- typed values -----------------------------------------------------------------------------
def parse_instant(value: Any) -> datetime | None:
    """An instant from what a client may send: ISO 8601 (with or without zone, ``T`` or a
    space), a bare date, or the portal's own ``DD.MM.YYYY[ HH:MM:SS]``. No zone: Moscow."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time())
    else:
        text = str(value).strip()
        if not text:
            return None
        parsed = None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
                try:
                    parsed = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if parsed is None:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=PORTAL_TZ)


def typed(value: Any, kind: FieldType) -> Any:
    """A comparable value of ``kind`` or None when it is empty or does not parse."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        value = "Y" if value else "N"
    if kind == "int":
        try:
            return int(float(str(value)))
        except ValueError:
            return None
    if kind == "float":
        try:
            return float(str(value))
        except ValueError:
            return None
    if kind in ("datetime", "date"):
        return parse_instant(value)
    return str(value)


def _like(pattern: str, text: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("%")) + "$"
    return re.match(regex, text, re.IGNORECASE | re.DOTALL) is not None


# -- filter -----------------------------------------------------------------------------------
def split_key(key: str) -> tuple[str, str]:
    """``">=DATE_MODIFY"`` -> (">=", "DATE_MODIFY"); no prefix -> ("=", key)."""
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix) :]
    return "=", key


def _matches_one(op: str, have: Any, want: Any, kind: FieldType) -> bool:
    if op in ("%", "!%"):
        found = have is not None and str(want).lower() in str(have).lower()
        return found if op == "%" else not found
    if op in ("=%", "%=", "!=%", "!%="):
        found = have is not None and _like(str(want), str(have))
        return found if op in ("=%", "%=") else not found
    empty_wanted = want is None or want == "" or want is False
    a, b = typed(have, kind), typed(want, kind)
    if op == "=":
        return a is None if empty_wanted else (a is not None and a == b)
    if op in ("!", "!="):
        return a is not None if empty_wanted else (a is None or a != b)
    if a is None or b is None:
        return False
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    raise ValueError(op)


def compile_filter(
    raw: Any,
    types: Mapping[str, FieldType],
    *,
    strict: bool = False,
) -> list[tuple[str, str, Any]]:
    """The filter as (op, field, value) conditions. Unknown fields are ignored as the old
    ``crm.*.list`` methods do, or refused (``strict``) as the newer controllers do."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, dict):
        raise ApiError(400, "", "Parameter 'filter' must be array.")
    conditions = []
    for key, value in raw.items():
        op, field = split_key(str(key))
        field = field.upper() if field.upper() in types else field
        if field not in types:
            if strict:
                raise ApiError(
                    400, "INVALID_ARG_VALUE", f"Invalid filter: field '{field}' is not allowed in filter"
                )
            continue
        conditions.append((op, field, value))
    return conditions


def record_matches(
    record: Mapping[str, Any], conditions: list[tuple[str, str, Any]], types: Mapping[str, FieldType]
) -> bool:
    for op, field, want in conditions:
        kind = types[field]
        have = record.get(field)
        if op in ("@", "!@") or (op in ("=", "!", "!=") and isinstance(want, list | dict)):
            values = as_list(want)
            hit = any(_matches_one("=", have, v, kind) for v in values)
            if hit == (op in ("!@", "!", "!=")):
                return False
        elif not _matches_one(op, have, want, kind):
            return False
    return True


# -- order ------------------------------------------------------------------------------------
def compile_order(
    raw: Any,
    types: Mapping[str, FieldType],
    *,
    strict: bool = False,
) -> list[tuple[str, bool]]:
    """(field, descending) pairs; ``ID ASC`` closes every order so paging is stable."""
    order: list[tuple[str, bool]] = []
    if raw not in (None, "", []):
        if not isinstance(raw, dict):
            raise ApiError(400, "", "Parameter 'order' must be array.")
        for key, direction in raw.items():
            field = str(key).upper() if str(key).upper() in types else str(key)
            text = str(direction).upper()
            if field not in types:
                if strict:
                    raise ApiError(
                        400, "INVALID_ARG_VALUE", f"Invalid order: field '{field}' is not allowed in order"
                    )
                continue
            if text not in ("ASC", "DESC"):
                if strict:
                    raise ApiError(
                        400,
                        "INVALID_ARG_VALUE",
                        "Invalid order: allowed sort directions are ASC, DESC. "
                        f"But got '{direction}' for field '{field}'",
                    )
                text = "ASC"
            order.append((field, text == "DESC"))
    if "ID" in types and not any(f == "ID" for f, _ in order):
        order.append(("ID", False))
    return order


def sort_records(
    records: list[dict[str, Any]], order: list[tuple[str, bool]], types: Mapping[str, FieldType]
) -> list[dict[str, Any]]:
    out = list(records)
    for field, descending in reversed(order):
        kind = types[field]
        present = [r for r in out if typed(r.get(field), kind) is not None]
        missing = [r for r in out if typed(r.get(field), kind) is None]
        present.sort(key=lambda r, f=field, k=kind: typed(r.get(f), k), reverse=descending)
        # empty values sort first ascending, last descending (as NULLs do in MySQL)
        out = present + missing if descending else missing + present
    return out


# -- select and paging ------------------------------------------------------------------------
def select_fields(
    raw: Any, standard: Iterable[str], custom: Iterable[str], multiple: Iterable[str] = ()
) -> list[str]:
    """The fields to return. Nothing asked: ``*`` + ``UF_*``. ``*`` is every standard field
    but not the multiple ones (PHONE, EMAIL), which come only when named."""
    standard, custom, multiple = list(standard), list(custom), list(multiple)
    asked = [str(x) for x in as_list(raw) if str(x)]
    if not asked:
        asked = ["*", "UF_*"]
    chosen: list[str] = []
    known = set(standard) | set(custom) | set(multiple)
    for name in asked:
        if name == "*":
            chosen.extend(standard)
        elif name == "UF_*":
            chosen.extend(custom)
        elif name.upper() in known:
            chosen.append(name.upper())
    if "ID" in known and "ID" not in chosen:
        chosen.insert(0, "ID")
    seen: set[str] = set()
    return [f for f in chosen if not (f in seen or seen.add(f))]


def parse_start(raw: Any) -> int:
    try:
        start = int(float(str(raw))) if raw not in (None, "") else 0
    except ValueError:
        start = 0
    return -1 if start < 0 else start


def page(rows: list[Any], start: int) -> tuple[list[Any], int | None, int | None]:
    """(page, total, next) for ``start``; ``start=-1`` counts nothing: total 0, no next."""
    if start < 0:
        return rows[:PAGE_SIZE], 0, None
    chunk = rows[start : start + PAGE_SIZE]
    nxt = start + PAGE_SIZE if start + PAGE_SIZE < len(rows) else None
    return chunk, len(rows), nxt
