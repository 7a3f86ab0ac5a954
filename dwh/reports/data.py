"""What a report shows, read from the marts once: the loss tables of the period, the funnel
conversion per manager against targets, the lost deals, the open issues, the reactivation
list and the coaching pairs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from dwh.config.models import FunnelConfig
from dwh.reports import i18n, marts
from dwh.reports.marts import Rows
from dwh.reports.periods import Week, as_date, last_complete_week, months_back
from dwh.reports.settings import Language, ReportSettings


@dataclass(frozen=True)
class Stage:
    code: str
    name: str
    target: float | None
    order: int


@dataclass
class Cell:
    """Deals that reached a stage and those of them that reached the next one."""

    reached: int = 0
    moved_on: int = 0
    target: float | None = None

    @property
    def rate(self) -> float | None:
        return self.moved_on / self.reached if self.reached else None

    @property
    def below_target(self) -> bool:
        return self.rate is not None and self.target is not None and self.rate < self.target


@dataclass
class ConversionMatrix:
    """Managers as rows, stages as columns: the worked example's table."""

    first_week: Week
    last_week: Week
    stages: list[Stage]
    managers: list[str]
    cells: dict[tuple[str, str], Cell]
    total: dict[str, Cell]

    def cell(self, manager: str, stage: str) -> Cell:
        return self.cells.get((manager, stage), Cell(target=self.total.get(stage, Cell()).target))


@dataclass(frozen=True)
class Total:
    """One row of a loss breakdown summed over the period."""

    key: str
    label: str
    lost_deals: int
    lost_amount: float
    closed_deals: int | None = None


@dataclass
class ReportData:
    as_of: date
    language: Language
    tz: ZoneInfo
    currency: str
    stages: list[Stage]
    period_start: date
    report_week: Week
    loss_by_stage: Rows
    loss_by_manager: Rows
    loss_by_reason: Rows
    conversion: Rows
    matrix: ConversionMatrix
    lost_deals: Rows
    dq_issues: Rows
    reactivation: Rows
    coaching: Rows | None
    stage_names: dict[str, str] = field(default_factory=dict)

    def stage_label(self, code: str | None, fallback: str | None = None) -> str:
        if code is None or code == "":
            return fallback or i18n.word("unknown", self.language)
        if code in self.stage_names:
            return self.stage_names[code]
        if code == "unmapped":
            return i18n.word("unmapped", self.language)
        return fallback or code

    def stage_order(self, code: str | None) -> tuple[int, str]:
        for stage in self.stages:
            if stage.code == code:
                return stage.order, ""
        return len(self.stages), code or ""

    # -- sums over the period ----------------------------------------------------------------
    def totals_by_stage(self) -> list[Total]:
        totals = _sum(
            self.loss_by_stage.rows,
            key=lambda r: r["stage"],
            label=lambda r: self.stage_label(r["stage"], r.get("stage_name")),
        )
        return sorted(totals, key=lambda t: self.stage_order(t.key))

    def totals_by_reason(self) -> list[Total]:
        key = "reason_code" if self.loss_by_reason.has("reason_code") else "reason_name"
        totals = _sum(
            self.loss_by_reason.rows,
            key=lambda r: r[key],
            label=lambda r: r["reason_name"] or i18n.word("unknown", self.language),
        )
        return sorted(totals, key=lambda t: (-t.lost_deals, -t.lost_amount, t.label))

    def totals_by_manager(self) -> list[Total]:
        key = "manager_key" if self.loss_by_manager.has("manager_key") else "manager_name"
        totals = _sum(
            self.loss_by_manager.rows,
            key=lambda r: r[key],
            label=lambda r: r["manager_name"] or i18n.word("unknown", self.language),
            closed=True,
        )
        return sorted(totals, key=lambda t: (-t.lost_deals, -t.lost_amount, t.label))


def number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    return float(str(value))


def _sum(
    rows: Iterable[dict[str, Any]],
    key: Callable[[dict[str, Any]], Any],
    label: Callable[[dict[str, Any]], str],
    closed: bool = False,
) -> list[Total]:
    deals: dict[str, int] = defaultdict(int)
    amount: dict[str, float] = defaultdict(float)
    closed_deals: dict[str, int] = defaultdict(int)
    labels: dict[str, str] = {}
    for row in rows:
        k = str(key(row)) if key(row) is not None else ""
        labels.setdefault(k, label(row))
        deals[k] += int(row["lost_deals"] or 0)
        amount[k] += number(row["lost_amount_base"]) or 0.0
        if closed:
            closed_deals[k] += int(row["closed_deals"] or 0)
    return [Total(k, labels[k], deals[k], amount[k], closed_deals[k] if closed else None) for k in labels]


def funnel_stages(funnel: FunnelConfig) -> list[Stage]:
    return [Stage(s.code, s.name, s.target_conversion, i) for i, s in enumerate(funnel.stages)]


def conversion_matrix(
    rows: Iterable[dict[str, Any]], stages: list[Stage], first: Week, last: Week
) -> ConversionMatrix:
    """Weeks of deal creation from ``first`` to ``last`` summed per manager and stage (the
    mart's weeks add up); stages without a next stage are left out."""
    targets = {s.code: s.target for s in stages}
    cells: dict[tuple[str, str], Cell] = {}
    total: dict[str, Cell] = {}
    seen_stages: set[str] = set()
    for row in rows:
        week = row["week"]
        if week is None or not first.monday <= week <= last.monday:
            continue
        stage = row["stage"]
        if stage is None or row["reached_next_stage"] is None:
            continue
        target = number(row["target_rate"])
        target = target if target is not None else targets.get(stage)
        manager = row["manager_name"] or "—"
        for cell in (cells.setdefault((manager, stage), Cell()), total.setdefault(stage, Cell())):
            cell.reached += int(row["reached_stage"] or 0)
            cell.moved_on += int(row["reached_next_stage"] or 0)
            cell.target = cell.target if cell.target is not None else target
        seen_stages.add(stage)
    ordered = [s for s in stages if s.code in seen_stages]
    ordered += [
        Stage(code, code, None, len(stages) + i) for i, code in enumerate(sorted(seen_stages - set(targets)))
    ]
    managers = sorted({m for m, _ in cells})
    return ConversionMatrix(first, last, ordered, managers, cells, total)


def _normalise(rows: Rows | None, column: str, tz: ZoneInfo) -> None:
    if rows is None or not rows.has(column):
        return
    for row in rows.rows:
        row[column] = as_date(row[column], tz)


def load(
    conn: psycopg.Connection,
    funnel: FunnelConfig,
    settings: ReportSettings,
    as_of: date,
    schema: str = "marts",
) -> ReportData:
    """Everything the Excel report and the weekly e-mail show, in one read-only transaction."""
    tz = ZoneInfo(funnel.timezone)
    stages = funnel_stages(funnel)
    period_start = months_back(as_of, settings.months)
    report_week = last_complete_week(as_of)
    lang = settings.language
    with conn.transaction():
        marts.read_only(conn)

        def monthly(spec: marts.MartSpec) -> Rows:
            rows = marts.fetch(conn, schema, spec)
            assert rows is not None
            _normalise(rows, "month", tz)
            rows.rows = [
                r for r in rows.rows if r["month"] is not None and period_start <= r["month"] <= as_of
            ]
            rows.rows.sort(key=lambda r: r["month"], reverse=True)
            return rows

        loss_by_stage = monthly(marts.LOSS_BY_STAGE)
        loss_by_manager = monthly(marts.LOSS_BY_MANAGER)
        loss_by_reason = monthly(marts.LOSS_BY_REASON)

        conversion = marts.fetch(conn, schema, marts.FUNNEL_CONVERSION)
        assert conversion is not None
        _normalise(conversion, "week", tz)
        for row in conversion.rows:
            row["week"] = row["week"] - timedelta(days=row["week"].weekday()) if row["week"] else None
        all_conversion = conversion.rows
        conversion.rows = [
            r for r in all_conversion if r["week"] is not None and period_start <= r["week"] <= as_of
        ]
        conversion.rows.sort(
            key=lambda r: (-r["week"].toordinal(), r["manager_name"] or "", _order(stages, r["stage"]))
        )
        first = report_week.shift(1 - settings.conversion_weeks)
        matrix = conversion_matrix(all_conversion, stages, first, report_week)

        start = datetime.combine(period_start, time(0), tzinfo=tz)
        end = datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=tz)
        lost = marts.fetch(conn, schema, marts.LOST_DEALS, "{closed_at} >= %(start)s and {closed_at} < %(end)s",
                           {"start": start, "end": end}, "{closed_at} desc, {deal_key}")  # fmt: skip
        assert lost is not None

        open_only = "resolved_at" in (marts.resolve(conn, schema, marts.DQ_ISSUES) or {})
        dq = marts.fetch(conn, schema, marts.DQ_ISSUES, "{resolved_at} is null" if open_only else "",
                         order="{manager_name}, {first_detected_at}, {deal_key}, {issue_type}")  # fmt: skip
        assert dq is not None
        keys = sorted({r["deal_key"] for r in dq.rows})
        deals = marts.fetch(conn, schema, marts.DEAL_NAMES, "{deal_key} = any(%(keys)s)", {"keys": keys})
        names = {d["deal_key"]: d for d in (deals.rows if deals else [])}
        for row in dq.rows:
            deal = names.get(row["deal_key"], {})
            row["deal_name"] = deal.get("deal_name")
            row["amount_base"] = deal.get("amount_base")

        reactivation = marts.fetch(
            conn, schema, marts.REACTIVATION, order="{due_on}, {manager_name}, {deal_key}"
        )
        assert reactivation is not None
        _normalise(reactivation, "due_on", tz)

        coaching = marts.fetch(conn, schema, marts.COACHING_PAIRS)
        if coaching is not None and coaching.has("week"):
            _normalise(coaching, "week", tz)
            weeks = sorted(
                {r["week"] for r in coaching.rows if r["week"] and r["week"] <= report_week.monday}
            )
            coaching.rows = [r for r in coaching.rows if weeks and r["week"] == weeks[-1]]
    if coaching is not None:
        coaching.rows.sort(key=lambda r: (r["manager_name"] or "", _order(stages, r["stage"])))
    return ReportData(
        as_of=as_of, language=lang, tz=tz, currency=funnel.base_currency, stages=stages,
        period_start=period_start, report_week=report_week, loss_by_stage=loss_by_stage,
        loss_by_manager=loss_by_manager, loss_by_reason=loss_by_reason, conversion=conversion,
        matrix=matrix, lost_deals=lost, dq_issues=dq, reactivation=reactivation, coaching=coaching,
        stage_names={s.code: s.name for s in stages},
    )  # fmt: skip


def _order(stages: list[Stage], code: str | None) -> int:
    return next((s.order for s in stages if s.code == code), len(stages))
