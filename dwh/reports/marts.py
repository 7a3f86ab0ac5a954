"""Reading the marts for a report: by the contract's column names, in read-only
transactions, nothing but the columns a report shows.

A mart's grain columns (the month, the week, the stage) are looked up among the names the
models may give them; a required column that is missing is one error naming the table,
the column and what the table has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql


class MartError(RuntimeError):
    """A mart a report needs is missing or lacks a column; ``str()`` says which and what to do."""


@dataclass(frozen=True)
class Col:
    key: str  # the name the report uses
    names: tuple[str, ...] = ()  # the names the mart may give it, first found wins (default: key)
    required: bool = True

    @property
    def candidates(self) -> tuple[str, ...]:
        return self.names or (self.key,)


@dataclass(frozen=True)
class MartSpec:
    table: str
    columns: tuple[Col, ...]
    required: bool = True


MONTH = ("month", "month_start", "loss_month", "closed_month")
WEEK = ("week_start", "week", "iso_week", "created_week", "creation_week", "week_of_creation")
STAGE = ("canonical_stage", "lost_at_canonical_stage", "stage_code", "stage")
STAGE_NAME = ("canonical_stage_name", "stage_name", "lost_at_canonical_stage_name")

LOSS_BY_STAGE = MartSpec("rpt_loss_by_stage", (
    Col("month", MONTH), Col("stage", STAGE), Col("stage_name", STAGE_NAME, required=False),
    Col("lost_deals"), Col("lost_deals_share"), Col("lost_amount_base"), Col("lost_amount_share"),
))  # fmt: skip

LOSS_BY_MANAGER = MartSpec("rpt_loss_by_manager", (
    Col("month", MONTH), Col("manager_key", required=False), Col("manager_name"), Col("closed_deals"),
    Col("lost_deals"), Col("loss_rate"), Col("lost_amount_base"), Col("share_of_all_losses"),
))  # fmt: skip

LOSS_BY_REASON = MartSpec("rpt_loss_by_reason", (
    Col("month", MONTH), Col("reason_code", ("loss_reason_code", "reason_code"), required=False),
    Col("reason_name", ("loss_reason_name", "reason_name")),
    Col("lost_deals"), Col("lost_deals_share"), Col("lost_amount_base"), Col("lost_amount_share"),
))  # fmt: skip

FUNNEL_CONVERSION = MartSpec("rpt_funnel_conversion", (
    Col("week", WEEK), Col("manager_key", required=False), Col("manager_name"), Col("stage", STAGE),
    Col("reached_stage"), Col("reached_next_stage"), Col("conversion_rate"), Col("target_rate"), Col("gap"),
))  # fmt: skip

COACHING_PAIRS = MartSpec("rpt_coaching_pairs", (
    Col("week", WEEK, required=False),
    Col("manager_name", ("manager_name", "learner_name", "learner_manager_name")),
    Col("stage", STAGE),
    Col("conversion_rate", ("conversion_rate", "manager_conversion_rate", "learner_conversion_rate")),
    Col("target_rate", ("target_rate",), required=False),
    Col("coach_name", ("coach_name", "coach_manager_name", "mentor_name", "best_manager_name",
                       "learn_from_manager_name", "colleague_name", "best_colleague_name")),
    Col("coach_rate", ("coach_conversion_rate", "mentor_conversion_rate", "best_conversion_rate",
                       "colleague_conversion_rate", "best_colleague_conversion_rate"), required=False),
), required=False)  # fmt: skip

LOST_DEALS = MartSpec("fct_lost_deals", (
    Col("deal_key"), Col("deal_name", required=False), Col("source_name", required=False),
    Col("manager_name"), Col("stage", ("lost_at_canonical_stage",), required=False),
    Col("stage_raw", ("lost_at_stage",), required=False),
    Col("reason_code", ("loss_reason_code",), required=False), Col("reason_name", ("loss_reason_name",)),
    Col("reason_raw", ("loss_reason_raw",), required=False), Col("comment", ("loss_comment",), required=False),
    Col("amount_base"), Col("cycle_days"), Col("closed_at", ("closed_at", "lost_at")),
    Col("customer_name", required=False), Col("customer_won_deals_before"),
    Col("customer_relationship_days"), Col("passed_conditional_refusal", required=False), Col("crm_url"),
))  # fmt: skip

DQ_ISSUES = MartSpec("dq_lost_deal_issues", (
    Col("deal_key"), Col("issue_type"), Col("manager_name"), Col("crm_url"), Col("first_detected_at"),
    Col("resolved_at", required=False),
))  # fmt: skip

DEAL_NAMES = MartSpec("fct_deals", (Col("deal_key"), Col("deal_name"), Col("amount_base")))

REACTIVATION = MartSpec("rpt_reactivation_due", (
    Col("deal_key"), Col("deal_name", required=False), Col("customer_name"), Col("loss_reason_name"),
    Col("due_on"), Col("manager_name"), Col("amount_base", required=False), Col("crm_url"),
))  # fmt: skip


@dataclass
class Rows:
    """A mart's rows as dicts keyed by the report's names; ``present`` holds the keys the mart had."""

    spec: MartSpec
    present: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def has(self, key: str) -> bool:
        return key in self.present


def read_only(conn: psycopg.Connection) -> None:
    """Every later statement of this transaction is refused if it would write."""
    conn.execute("set transaction read only")


def table_columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        """select column_name from information_schema.columns
           where table_schema = %s and table_name = %s order by ordinal_position""",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def resolve(conn: psycopg.Connection, schema: str, spec: MartSpec) -> dict[str, str] | None:
    """The report's key -> the mart's column; None when an optional mart is absent."""
    existing = table_columns(conn, schema, spec.table)
    if not existing:
        if not spec.required:
            return None
        raise MartError(
            f"{schema}.{spec.table} is missing: build the marts first "
            f"(dbt build, or materialize the dbt assets in Dagster)"
        )
    found: dict[str, str] = {}
    missing: list[str] = []
    for col in spec.columns:
        name = next((n for n in col.candidates if n in existing), None)
        if name is not None:
            found[col.key] = name
        elif col.required:
            missing.append(" or ".join(col.candidates))
    if missing:
        raise MartError(
            f"{schema}.{spec.table}: expected the column(s) {'; '.join(missing)}, "
            f"found only {', '.join(existing)}"
        )
    return found


def fetch(
    conn: psycopg.Connection,
    schema: str,
    spec: MartSpec,
    where: str = "",
    params: Mapping[str, Any] | Sequence[Any] | None = None,
    order: str = "",
) -> Rows | None:
    """The mart's rows; ``where`` and ``order`` name columns by the report's keys in braces
    (``"{closed_at} >= %(start)s"``) and may only use keys the mart has."""
    names = resolve(conn, schema, spec)
    if names is None:
        return None
    present = tuple(c.key for c in spec.columns if c.key in names)
    idents = {key: sql.Identifier(name) for key, name in names.items()}
    query = sql.SQL("select {cols} from {table}").format(
        cols=sql.SQL(", ").join(idents[k] for k in present),
        table=sql.Identifier(schema, spec.table),
    )
    if where:
        query += sql.SQL(" where ") + sql.SQL(where).format(**idents)
    if order:
        query += sql.SQL(" order by ") + sql.SQL(order).format(**idents)
    rows = [dict(zip(present, r, strict=True)) for r in conn.execute(query, params).fetchall()]
    return Rows(spec, present, rows)
