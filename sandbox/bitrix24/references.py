"""``batch`` commands that use earlier commands' answers: ``$result[cmd][49][ID]``.

The portal lets each command of a batch refer to what the commands before it returned:
``$result[key][path...]`` (also ``$error``, ``$total``, ``$next``, ``$time``), resolved after
the command's query string is decoded. Paging clients chain list pages this way inside one
request: ``filter[>ID]=$result[p0][49][ID]`` reads the page after ``p0``'s last row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REFERENCE = re.compile(r"\$(result|error|total|next|time)((?:\[[^\]]*\])+)")


def substitute(params: Any, parts: Mapping[str, Mapping[str, Any]]) -> Any:
    """``params`` with every reference replaced from ``parts`` (``{"result": {...}, ...}``).

    A value that is one whole reference takes the referenced value itself (a list stays a
    list); a reference inside a longer text is replaced by its text. A reference that does
    not resolve (the previous page was short and has no row 49, or that command failed)
    becomes an empty value, as PHP reads a missing array key: the command then runs with an
    empty filter value, which here matches nothing.
    """
    if isinstance(params, dict):
        return {k: substitute(v, parts) for k, v in params.items()}
    if isinstance(params, list):
        return [substitute(v, parts) for v in params]
    if not isinstance(params, str) or "$" not in params:
        return params
    whole = REFERENCE.fullmatch(params)
    if whole:
        value = _resolve(parts, whole.group(1), whole.group(2))
        return "" if value is None else value
    return REFERENCE.sub(lambda m: _as_text(_resolve(parts, m.group(1), m.group(2))), params)


def _resolve(parts: Mapping[str, Mapping[str, Any]], kind: str, path: str) -> Any:
    node: Any = parts.get(kind, {})
    for key in re.findall(r"\[([^\]]*)\]", path):
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
        if node is None:
            return None
    return node


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    return str(value)
