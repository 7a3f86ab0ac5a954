"""What is read from a RosBiznesSoft installation, by meaning, and how a served row becomes a
raw record.

Each structure is named by its meaning (the ``objects:`` key of sources.yaml, also the raw
table), and asks for the fields of its meanings (``fields:`` keys), in the installation's
names. The landed record is ``{"structure", "fields", "values"}``: ``fields`` is the row
exactly as served, ``values`` the same values keyed by meaning, so that the warehouse reads
every installation the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dwh.config.models import RosBiznesSoftSource

EMPTY_DATES = {"", "0000-00-00", "0000-00-00 00:00:00"}  # MySQL's zero date is an empty one
NUMBER = re.compile(r"-?\d+(\.\d+)?")
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


@dataclass(frozen=True)
class Structure:
    meaning: str  # objects: key and the raw table
    fields: tuple[str, ...]  # field meanings asked for (those the installation names)
    modified: str | None = None  # the field meaning read incrementally (a modification or creation time)
    date_fields: tuple[str, ...] = ()  # field meanings that must be dates when not empty
    number_fields: tuple[str, ...] = ()  # field meanings that must be numbers when not empty

    @property
    def entity(self) -> str:
        return self.meaning


PIPELINES = Structure("pipelines", ("id", "visible", "pipeline_name"))
STAGES = Structure(
    "stages",
    ("id", "visible", "stage_name", "stage_pipeline", "stage_sort", "stage_result"),
    number_fields=("stage_sort",),
)
LOSS_REASONS = Structure("loss_reasons", ("id", "visible", "loss_reason_name"))
USERS = Structure("users", ("id", "visible", "user_name", "user_email", "user_active"))
COMPANIES = Structure(
    "companies",
    ("id", "visible", "company_name", "company_created", "company_modified", "company_manager"),
    modified="company_modified",
    date_fields=("company_created", "company_modified"),
)
COMPANY_DETAILS = Structure(
    "company_details",
    ("id", "visible", "details_company", "details_name", "details_inn", "details_modified"),
    modified="details_modified",
    date_fields=("details_modified",),
)
DEALS = Structure(
    "deals",
    (
        "id", "visible", "deal_number", "deal_name", "deal_created", "deal_modified", "deal_closed",
        "deal_pipeline", "deal_stage", "deal_responsible", "deal_company", "deal_amount", "deal_currency",
        "deal_loss_reason", "deal_comment",
    ),
    modified="deal_modified",
    date_fields=("deal_created", "deal_modified", "deal_closed"),
    number_fields=("deal_amount",),
)  # fmt: skip
STAGE_HISTORY = Structure(
    "stage_history",
    ("id", "history_deal", "history_stage", "history_date", "history_user"),
    modified="history_date",
    date_fields=("history_date",),
)
COMMENTS = Structure(
    "comments",
    ("id", "visible", "comment_deal", "comment_text", "comment_date", "comment_author"),
    modified="comment_date",
    date_fields=("comment_date",),
)
# read in this order (lookups first); one request carries a page of each
STRUCTURES = (
    PIPELINES,
    STAGES,
    LOSS_REASONS,
    USERS,
    COMPANIES,
    COMPANY_DETAILS,
    DEALS,
    STAGE_HISTORY,
    COMMENTS,
)
ENTITIES = tuple(s.entity for s in STRUCTURES)


def parse_date(text: str | None, zone: ZoneInfo) -> datetime | None:
    """``Y-m-d H:i:s`` (or ``Y-m-d``) in the installation's zone; None when empty or unreadable."""
    value = (text or "").strip()
    if value in EMPTY_DATES:
        return None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=zone)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Names:
    """One connection's names: which structure and which fields each meaning is."""

    source: RosBiznesSoftSource

    def structure(self, s: Structure) -> str:
        return self.source.object_name(s.meaning)

    def fields(self, s: Structure) -> dict[str, str]:
        """field meaning -> the installation's name, for the fields this installation has."""
        return {m: self.source.field_name(m) for m in s.fields if self.source.field_name(m)}

    def meaning_of_field(self, s: Structure, name: str) -> str | None:
        return next((m for m, n in self.fields(s).items() if n == name), None)


def record_problem(s: Structure, row: Any, names: dict[str, str], zone: ZoneInfo) -> str | None:
    """Why a served row cannot be landed, or None."""
    if not isinstance(row, dict):
        return f"a {type(row).__name__}, not a record"
    id_name = names["id"]
    if not str(row.get(id_name) or "").strip():
        return f"no {id_name} (fields.id)"
    for meaning in s.date_fields:
        name = names.get(meaning)
        value = str(row.get(name) or "").strip() if name else ""
        if value and value not in EMPTY_DATES and parse_date(value, zone) is None:
            return f"{name} (fields.{meaning}) {value!r} is not a date written Y-m-d H:i:s"
    for meaning in s.number_fields:
        name = names.get(meaning)
        value = str(row.get(name) or "").strip() if name else ""
        if value and not NUMBER.fullmatch(value):
            return f"{name} (fields.{meaning}) {value!r} is not a number written 1234.56"
    return None


def values_of(row: dict[str, str], names: dict[str, str]) -> dict[str, str | None]:
    return {meaning: row.get(name) for meaning, name in names.items()}
