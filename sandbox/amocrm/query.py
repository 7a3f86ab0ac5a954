"""amoCRM's PHP-style query strings (``filter[updated_at][from]=…``, ``filter[id][]=…``) and
the 400 answer its API gives when a parameter does not validate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


@dataclass
class ValidationFailed(Exception):
    """A parameter the API refuses; ``path`` is the dotted parameter path, as amoCRM names it."""

    path: str
    detail: str
    code: str = "InvalidValue"

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``[("filter[id][]", "1"), ("filter[id][]", "2"), ("page", "2")]`` ->
    ``{"filter": {"id": ["1", "2"]}, "page": "2"}``. A later plain value replaces an earlier one,
    as PHP does; ``[]`` appends; ``[0]`` keys stay dict keys (see ``items``)."""
    tree: dict[str, Any] = {}
    for raw_key, value in pairs:
        m = _KEY.match(raw_key)
        if not m:
            tree[raw_key] = value
            continue
        keys = [m.group(1), *_PART.findall(m.group(2))]
        node: Any = tree
        for i, key in enumerate(keys):
            last = i == len(keys) - 1
            if isinstance(node, list):  # "a[][b]" is not used by amoCRM clients: flatten
                node.append(value)
                break
            if last:
                if key == "":
                    node.setdefault("", []).append(value)
                else:
                    node[key] = value
                break
            nxt = keys[i + 1]
            child = node.get(key)
            if nxt == "" and i + 1 == len(keys) - 1:
                if not isinstance(child, list):
                    child = []
                    node[key] = child
                child.append(value)
                break
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
    return tree


def items(value: Any) -> list[str]:
    """Every form amoCRM accepts for a multiple value: ``"1"``, ``"1,2"``, ``["1","2"]``,
    ``{"0": "1", "1": "2"}``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [v for x in value for v in items(x)]
    if isinstance(value, dict):
        return [v for _, x in sorted(value.items(), key=lambda kv: _sort_key(kv[0])) for v in items(x)]
    return [str(value)]


def _sort_key(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def as_int(value: Any, path: str, minimum: int | None = None) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value.strip()):
        raise ValidationFailed(path, "This value should be of type int.", "InvalidType")
    number = int(value)
    if minimum is not None and number < minimum:
        raise ValidationFailed(path, f"This value should be greater than or equal to {minimum}.", "TooLow")
    return number


def int_list(value: Any, path: str) -> list[int]:
    return [as_int(v, path) for v in items(value)]


def int_range(value: Any, path: str) -> tuple[int | None, int | None]:
    """A date filter: one timestamp means "from then on"; ``[from]``/``[to]`` bound both ends
    (both inclusive)."""
    if isinstance(value, dict):
        unknown = set(value) - {"from", "to"}
        if unknown:
            raise ValidationFailed(
                f"{path}.{sorted(unknown)[0]}", "This field was not expected.", "Unexpected"
            )
        lo = as_int(value["from"], f"{path}.from") if value.get("from") not in (None, "") else None
        hi = as_int(value["to"], f"{path}.to") if value.get("to") not in (None, "") else None
        return lo, hi
    return as_int(value, path), None


def in_range(x: int | None, bounds: tuple[int | None, int | None]) -> bool:
    lo, hi = bounds
    if x is None:
        return False
    return (lo is None or x >= lo) and (hi is None or x <= hi)


def subtree(tree: dict[str, Any], key: str) -> dict[str, Any]:
    value = tree.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(key, "This value should be of type array.", "InvalidType")
    return value


def paging(tree: dict[str, Any], max_limit: int, default_limit: int = 50) -> tuple[int, int]:
    """``page`` from 1; ``limit`` above the maximum is silently cut to it, as amoCRM does."""
    page = as_int(tree["page"], "page", minimum=1) if tree.get("page") not in (None, "") else 1
    limit = (
        as_int(tree["limit"], "limit", minimum=1) if tree.get("limit") not in (None, "") else default_limit
    )
    return page, min(limit, max_limit)


def ordering(tree: dict[str, Any], allowed: tuple[str, ...]) -> tuple[str, bool] | None:
    """``order[updated_at]=desc`` -> ``("updated_at", True)``."""
    order = tree.get("order")
    if order is None:
        return None
    if not isinstance(order, dict) or len(order) != 1:
        raise ValidationFailed("order", f"Sort by one of: {', '.join(allowed)}.", "InvalidValue")
    field, direction = next(iter(order.items()))
    if field not in allowed:
        raise ValidationFailed(
            f"order.{field}", "The value you selected is not a valid choice.", "NotSupportedChoice"
        )
    if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
        raise ValidationFailed(
            f"order.{field}", "The value you selected is not a valid choice.", "NotSupportedChoice"
        )
    return field, direction.lower() == "desc"


def with_set(tree: dict[str, Any]) -> set[str]:
    return set(items(tree.get("with")))
