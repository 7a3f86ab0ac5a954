"""The Creatio objects landed in ``raw_creatio``, and what makes a record landable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class CreatioObject:
    """One OData 4 entity set, landed in ``raw_creatio.<entity>`` by its ``Id``.

    ``base_filter`` narrows the set to what the warehouse needs (``SysAdminUnit``: users only)."""

    entity: str
    set_name: str
    base_filter: str | None = None


STAGES = CreatioObject("stages", "OpportunityStage")
CLOSE_REASONS = CreatioObject("close_reasons", "OpportunityCloseReason")
USERS = CreatioObject("users", "SysAdminUnit", "SysAdminUnitTypeValue eq 4")
CONTACTS = CreatioObject("contacts", "Contact")
ACCOUNTS = CreatioObject("accounts", "Account")
OPPORTUNITIES = CreatioObject("opportunities", "Opportunity")
STAGE_HISTORY = CreatioObject("stage_history", "OpportunityInStage")

# in the order they are read: the lookups, then the deals, then the deals' stage history
OBJECTS: tuple[CreatioObject, ...] = (
    STAGES,
    CLOSE_REASONS,
    USERS,
    CONTACTS,
    ACCOUNTS,
    OPPORTUNITIES,
    STAGE_HISTORY,
)

# the order of the raw tables (the Dagster multi-asset lists them in this order)
ENTITIES: tuple[str, ...] = (
    "opportunities",
    "stage_history",
    "stages",
    "close_reasons",
    "users",
    "contacts",
    "accounts",
)


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and GUID.match(value) is not None


def parse_instant(value: Any) -> datetime | None:
    """A Creatio date (``2024-03-01T07:15:02Z``, fractions and offsets allowed) as a UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # Creatio serves UTC
    return parsed.astimezone(UTC)


def odata_instant(moment: datetime) -> str:
    """An instant as an OData 4 ``Edm.DateTimeOffset`` literal (UTC, ``Z``, unquoted)."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def record_problem(record: Any) -> str | None:
    """Why a record cannot be landed, or None."""
    if not isinstance(record, dict):
        return f"the record is a {type(record).__name__}, not an object"
    if not is_guid(record.get("Id")):
        return f"Id {record.get('Id')!r} is not a GUID"
    if parse_instant(record.get("ModifiedOn")) is None:
        return f"ModifiedOn {record.get('ModifiedOn')!r} of {record['Id']} is not a date"
    return None
