"""What a served record must have before it lands: an object, an id, and (where the list is read
by time) a timestamp in unix seconds. A record that fails goes to ``ops.rejects`` with the
reason; the record itself is never changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from extractors.common.landing import RawRecord

IdKind = Literal["int", "str"]


@dataclass(frozen=True)
class Shape:
    """What the records of one list look like."""

    what: str  # "lead", "event", ... for messages
    id_kind: IdKind = "int"
    time_field: str | None = "updated_at"  # the record's own time; None: it has none
    time_required: bool = True
    embedded_list: str | None = None  # a pipeline's _embedded.statuses must be a list


@dataclass(frozen=True)
class Checked:
    record: RawRecord | None
    seconds: int | None  # the record's time in unix seconds, for cursors
    problem: str | None  # why it was rejected
    record_id: str | None  # for the reject row, when one could be read


def _record_id(value: Any, kind: IdKind) -> str | None:
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return str(value)
        if isinstance(value, str) and value.isdigit() and int(value) > 0:
            return value
        return None
    return value if isinstance(value, str) and value.strip() else None


def check(shape: Shape, record: Any, position: int) -> Checked:
    if not isinstance(record, dict):
        return Checked(None, None, f"{shape.what} #{position} of the page is a {type(record).__name__}, "
                                   "not an object", None)  # fmt: skip
    raw_id = record.get("id")
    record_id = _record_id(raw_id, shape.id_kind)
    if record_id is None:
        expected = "a positive integer" if shape.id_kind == "int" else "a non-empty string"
        return Checked(None, None, f"{shape.what} #{position} of the page: id is {raw_id!r}, expected {expected}",
                       None)  # fmt: skip
    seconds: int | None = None
    if shape.time_field is not None:
        value = record.get(shape.time_field)
        if value is None and not shape.time_required:
            pass
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            seconds = value
        else:
            return Checked(None, None, f"{shape.what} {record_id}: {shape.time_field} is {value!r}, "
                                       "expected unix seconds", record_id)  # fmt: skip
    if shape.embedded_list is not None:
        embedded = record.get("_embedded")
        inner = embedded.get(shape.embedded_list) if isinstance(embedded, dict) else None
        if not isinstance(inner, list):
            return Checked(None, None, f"{shape.what} {record_id}: _embedded.{shape.embedded_list} is missing "
                                       "or not a list", record_id)  # fmt: skip
    moment = datetime.fromtimestamp(seconds, UTC) if seconds is not None else None
    return Checked(RawRecord(record_id, record, moment), seconds, None, record_id)


@dataclass(frozen=True)
class CheckedPage:
    """One page of a list, checked and ready to land."""

    served: int  # records on the page, good or not
    next_url: str | None  # the API's link to the next page
    records: list[RawRecord]  # the good ones, one per id (a record served twice on a page lands once)
    rejected: list[tuple[Checked, Any]]  # the bad ones with what was served
    ids: list[str]  # every id the page shows, sorted: a bad record is not a deleted one
    seconds: list[int]  # the good records' times


def check_page(shape: Shape, records: list[Any], next_url: str | None) -> CheckedPage:
    good: dict[str, RawRecord] = {}
    rejected: list[tuple[Checked, Any]] = []
    seen: set[str] = set()
    seconds: list[int] = []
    for position, record in enumerate(records, start=1):
        checked = check(shape, record, position)
        if checked.record_id is not None:
            seen.add(checked.record_id)
        if checked.record is None:
            rejected.append((checked, record))
            continue
        good[checked.record.id] = checked.record
        if checked.seconds is not None:
            seconds.append(checked.seconds)
    return CheckedPage(len(records), next_url, list(good.values()), rejected, sorted(seen), seconds)
