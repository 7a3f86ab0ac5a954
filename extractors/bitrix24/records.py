"""Checking the portal's rows before they land: an id, and a readable modification time.

Rows land exactly as served; these checks only decide *whether* a row lands. A row that is
not an object, has no id, or carries a modification time that is not an ISO 8601 instant
with an offset is rejected with a reason naming the row and the field; the others land.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from extractors.common.landing import RawRecord


@dataclass(frozen=True)
class Reject:
    record_id: str | None
    reason: str
    payload: Any


def parse_instant(value: Any) -> datetime:
    """``2024-09-02T18:37:18+03:00`` -> an aware datetime; anything else raises ValueError."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset")
    return parsed


def upper_id(row: dict[str, Any]) -> str | None:
    value = row.get("ID")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value))
    return None


def lower_id(row: dict[str, Any]) -> str | None:
    value = row.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return str(int(value))
    return None


def check(
    what: str,
    rows: Iterable[Any],
    id_of: Callable[[dict[str, Any]], str | None],
    updated_field: str | None,
) -> tuple[list[RawRecord], list[Reject]]:
    """Split ``rows`` (of ``what``, e.g. ``"crm.deal.list"``) into records and rejects."""
    records: list[RawRecord] = []
    rejects: list[Reject] = []
    for row in rows:
        if not isinstance(row, dict):
            rejects.append(Reject(None, f"{what}: a row that is a {type(row).__name__}, not an object", row))
            continue
        record_id = id_of(row)
        if record_id is None:
            field = "id" if "id" in row and "ID" not in row else "ID"
            rejects.append(
                Reject(None, f"{what}: a row without a readable {field} ({row.get(field)!r})", row)
            )
            continue
        updated = None
        if updated_field is not None:
            value = row.get(updated_field)
            try:
                updated = parse_instant(value)
            except ValueError:
                rejects.append(
                    Reject(
                        record_id,
                        f"{what}: row ID {record_id}: {updated_field} {value!r} is not an ISO 8601 instant with an offset",
                        row,
                    )
                )
                continue
        records.append(RawRecord(record_id, row, updated))
    return records, rejects
