"""Compare the marts with the sandbox's ground truth (sandbox.world.truth), deal by deal,
transition by transition, issue by issue and in the aggregates.

The truth writes "" where the warehouse has a code for "no stage": a lost or conditional
refusal stage, an unmapped stage, no stage before the loss. Those are mapped to "" here."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from sandbox.world.truth import Truth

MOSCOW = ZoneInfo("Europe/Moscow")
NO_STAGE = {"lost", "conditional_refusal", "unmapped", "unknown"}

DEAL_FIELDS = {  # truth column -> fct_deals column
    "source_name": "source_name", "source_system": "source_system", "deal_id": "deal_id",
    "deal_number": "deal_number", "deal_name": "deal_name", "pipeline_name": "pipeline_name",
    "stage_name": "stage_name", "canonical_stage": "canonical_stage", "status": "status",
    "furthest_canonical_stage": "furthest_canonical_stage", "lost_at_pipeline": "lost_at_pipeline_name",
    "lost_at_stage": "lost_at_stage", "lost_at_canonical_stage": "lost_at_canonical_stage",
    "passed_conditional_refusal": "passed_conditional_refusal", "loss_reason_raw": "loss_reason_raw",
    "loss_reason_code": "loss_reason_code", "loss_comment": "loss_comment", "amount": "amount",
    "currency": "currency", "amount_base": "amount_base", "created_at": "created_at",
    "closed_at": "closed_at", "cycle_days": "cycle_days", "manager_name": "manager_name",
    "customer_key": "customer_key", "customer_name": "customer_name",
}  # fmt: skip
TRANSITION_FIELDS = {
    "from_pipeline": "from_pipeline_name", "from_stage_id": "from_stage_id", "from_stage": "from_stage",
    "from_canonical_stage": "from_canonical_stage", "to_pipeline": "to_pipeline_name",
    "to_stage_id": "to_stage_id", "to_stage": "to_stage", "to_canonical_stage": "to_canonical_stage",
    "transitioned_at": "transitioned_at", "hours_in_from_stage": "hours_in_from_stage",
}  # fmt: skip


def rows(conn: psycopg.Connection, query: str) -> list[dict[str, Any]]:
    cur = conn.execute(query)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def text(value: Any, column: str = "") -> str:
    """A warehouse value written the way the truth files write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if column in ("amount", "amount_base"):
        return f"{Decimal(value):.2f}"
    if column in ("cycle_days", "hours_in_from_stage"):
        return f"{Decimal(value):.4f}"
    if "canonical" in column and value in NO_STAGE:
        return ""
    return str(value)


def same(truth_value: str, mine: str, column: str) -> bool:
    if column in ("cycle_days", "hours_in_from_stage") and truth_value and mine:
        # the truth formats a float; the warehouse rounds the exact value: ties may differ by 1e-4
        return abs(Decimal(truth_value) - Decimal(mine)) <= Decimal("0.0001")
    return truth_value == mine


def deal_differences(conn: psycopg.Connection, truth: Truth) -> Counter[str]:
    """Per field, how many live deals differ from the truth (plus missing/extra deals)."""
    mine = {r["deal_key"]: r for r in rows(conn, "select * from marts.fct_deals")}
    emails = dict(conn.execute("select manager_key, manager_email from marts.dim_managers").fetchall())
    live = [d for d in truth.deals if d["is_deleted"] == "false"]
    diff: Counter[str] = Counter()
    diff["extra deals"] = len(set(mine) - {d["deal_key"] for d in live})
    for t in live:
        m = mine.get(t["deal_key"])
        if m is None:
            diff["missing deals"] += 1
            continue
        for tf, mf in DEAL_FIELDS.items():
            if not same(t[tf], text(m[mf], mf), mf):
                diff[tf] += 1
        if emails.get(m["manager_key"]) != t["manager_email"]:
            diff["manager_email"] += 1
    return +diff


def transition_differences(conn: psycopg.Connection, truth: Truth) -> Counter[str]:
    mine = {(r["deal_key"], r["seq"]): r for r in rows(conn, "select * from marts.fct_stage_transitions")}
    expected = {(t["deal_key"], int(t["seq"])): t for t in truth.transitions}
    diff: Counter[str] = Counter()
    diff["missing transitions"] = len(set(expected) - set(mine))
    diff["extra transitions"] = len(set(mine) - set(expected))
    for key in set(expected) & set(mine):
        for tf, mf in TRANSITION_FIELDS.items():
            if not same(expected[key][tf], text(mine[key][mf], mf), mf):
                diff[tf] += 1
    return +diff


def found_issues(conn: psycopg.Connection) -> set[tuple[str, str]]:
    open_issues = conn.execute(
        "select deal_key, issue_type from marts.dq_lost_deal_issues where is_open"
    ).fetchall()
    anomalies = conn.execute("select deal_key, anomaly_type from marts.dq_deal_anomalies").fetchall()
    return {tuple(r) for r in open_issues} | {tuple(r) for r in anomalies}  # type: ignore[misc]


def expected_issues(truth: Truth) -> set[tuple[str, str]]:
    return {(r["deal_key"], r["issue_type"]) for r in truth.dq_issues}


def moscow_month(iso: str) -> date:
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).astimezone(MOSCOW)
    return moment.date().replace(day=1)


def moscow_week(iso: str) -> date:
    day = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).astimezone(MOSCOW).date()
    return date.fromordinal(day.toordinal() - day.weekday())


def expected_loss_by_stage(truth: Truth) -> dict[tuple[date, str], tuple[int, Decimal]]:
    out: dict[tuple[date, str], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for d in truth.deals:
        if d["is_deleted"] == "false" and d["status"] == "lost":
            stage = d["lost_at_canonical_stage"] or ("unmapped" if d["lost_at_stage"] else "unknown")
            cell = out[(moscow_month(d["closed_at"]), stage)]
            cell[0] += 1
            cell[1] += Decimal(d["amount_base"])
    return {k: (v[0], v[1]) for k, v in out.items()}


def expected_loss_by_reason(truth: Truth) -> dict[tuple[date, str | None], tuple[int, Decimal]]:
    out: dict[tuple[date, str | None], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for d in truth.deals:
        if d["is_deleted"] == "false" and d["status"] == "lost":
            cell = out[(moscow_month(d["closed_at"]), d["loss_reason_code"] or None)]
            cell[0] += 1
            cell[1] += Decimal(d["amount_base"])
    return {k: (v[0], v[1]) for k, v in out.items()}


def expected_loss_by_manager(truth: Truth) -> dict[tuple[date, str], tuple[int, int]]:
    out: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
    for d in truth.deals:
        if d["is_deleted"] == "false" and d["status"] in ("won", "lost"):
            cell = out[(moscow_month(d["closed_at"]), d["manager_email"])]
            cell[0] += 1
            cell[1] += d["status"] == "lost"
    return {k: (v[0], v[1]) for k, v in out.items()}


def expected_funnel(truth: Truth, stages: list[str]) -> dict[tuple[date, str, str], tuple[int, int | None]]:
    """(week, manager e-mail, stage) -> (reached the stage, reached the next)."""
    out: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for d in truth.deals:
        if d["is_deleted"] == "true" or not d["furthest_canonical_stage"]:
            continue
        furthest = stages.index(d["furthest_canonical_stage"])
        for i, stage in enumerate(stages[: furthest + 1]):
            cell = out[(moscow_week(d["created_at"]), d["manager_email"], stage)]
            cell[0] += 1
            cell[1] += furthest > i
    last = stages[-1]
    return {k: (v[0], None if k[2] == last else v[1]) for k, v in out.items()}
