"""What is landed from Megaplan, and the checks a served record must pass before it is.

Records are landed exactly as served. The landing id is the entity's own ``id``, except for
the rows that belong to a deal and do not always name it: a status-history row and a comment
are landed as ``<deal id>|<row id>``, so the deal is known from the id alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

ENTITIES: tuple[str, ...] = (
    "deals",
    "programs",
    "program_states",
    "status_history",
    "comments",
    "employees",
    "contractor_companies",
    "deal_fields",
)

# The deal fields asked of the collection besides its default set (custom fields are added from
# /deal/extraFields). Whatever tells that a deal changed is here: its state and when it was
# set, its modification time, its comment count and latest comment.
DEAL_FIELDS: tuple[str, ...] = (
    "name", "number", "description", "program", "state", "stateTimeUpdated", "result", "manager",
    "contractor", "price", "currency", "timeCreated", "timeUpdated", "userCreated", "commentsCount",
    "lastCommentTimeCreated",
)  # fmt: skip
PROGRAM_FIELDS: tuple[str, ...] = ("name", "states")
EMPLOYEE_FIELDS: tuple[str, ...] = (
    "name", "firstName", "middleName", "lastName", "position", "department", "isWorking", "contactInfo",
)  # fmt: skip
CONTRACTOR_FIELDS: tuple[str, ...] = ("name", "payers", "contactInfo", "timeCreated", "timeUpdated")

Record = dict[str, Any]


def entity_id(record: Any) -> str | None:
    """The record's ``id`` as text (ids are strings in the API, numbers in some answers)."""
    if not isinstance(record, dict):
        return None
    value = record.get("id")
    if value is None and str(record.get("contentType", "")).endswith("Field"):
        value = record.get("name")  # a custom field definition is known by its name
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int | str):
        return str(value)
    return None


def child_id(deal_id: str, row_id: str) -> str:
    return f"{deal_id}|{row_id}"


def deal_of(landing_id: str) -> str:
    return landing_id.split("|", 1)[0]


def parse_time(value: Any) -> datetime | None:
    """A ``DateTime`` object (``{"contentType": "DateTime", "value": "<ISO 8601>"}``) or a bare
    ISO string; None when absent. Raises ValueError when present and unreadable."""
    if value is None:
        return None
    text = value.get("value") if isinstance(value, dict) else value
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"not a date: {text!r}")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"a date without a zone offset: {text!r}")
    return moment


def problem(entity: str, record: Any, time_field: str | None) -> str | None:
    """Why ``record`` cannot be landed, or None."""
    if not isinstance(record, dict):
        return f"{entity}: not an object but {type(record).__name__}"
    if entity_id(record) is None:
        return f"{entity}: a record without an id ({_short(record)})"
    if time_field is not None:
        try:
            parse_time(record.get(time_field))
        except ValueError as exc:
            return f"{entity} {entity_id(record)}: {time_field} is unreadable ({exc})"
    return None


def _short(record: Record) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in list(record.items())[:4])
    return text if len(text) <= 160 else text[:157] + "..."
