"""Suites for the marts (schema ``marts``): the invariants analysts rely on.

Statuses and issue types within their value sets; money never negative; shares within
[0, 1] and, per month, summing to 1 (within ``SHARE_TOLERANCE``, for rounding); keys that
resolve (every lost deal and every stage transition belongs to a deal of ``fct_deals``).

A failing mart invariant is an error: its check blocks what is downstream in the same run
(the digest, the exports), so wrong numbers are not sent out. Columns are the contract's
(docs/architecture: the marts table); a mart may carry more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from psycopg import sql

from expectations.runner import MAX_ROWS, Suite

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations import Expectation

MARTS_SCHEMA = "marts"
DEAL_STATUSES = ("open", "won", "lost")
ISSUE_TYPES = (
    "missing_reason",
    "unknown_reason",
    "missing_comment",
    "skipped_conditional_refusal",
    "lost_too_fast",
    "reason_needs_review",
)
SHARE_TOLERANCE = 0.01  # shares are rounded in the marts; a wrong share is off by far more
# the month column of the monthly reports, by the names a model may give it
PERIOD_COLUMNS = ("month", "loss_month", "month_start", "report_month", "period_month", "period")


def _gx():
    import great_expectations as gx

    return gx.expectations


def _columns(names: Sequence[str], available: frozenset[str], alias: str = "t") -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(n)) for n in names if n in available
    )


Extra = str | Callable[[frozenset[str]], str]


def _select(
    table: str, names: Sequence[str], extra: Extra = "", join: str = "", order: Sequence[str] = ()
) -> Callable[[str, frozenset[str]], sql.Composable]:
    """``select <names that exist> [, extra] from schema.table t [join] order by ... limit``.
    ``join`` and ``extra`` are fixed SQL (``extra`` may depend on the columns the table has);
    ``{schema}`` in ``join`` is the marts schema."""
    names = list(dict.fromkeys(names))

    def build(schema: str, available: frozenset[str]) -> sql.Composable:
        fields = _columns(names, available)
        added = extra(available) if callable(extra) else extra
        if added:
            fields = sql.SQL("{}, {}").format(fields, sql.SQL(added))
        query = sql.SQL("select {fields} from {table} as t {join}").format(
            fields=fields,
            table=sql.Identifier(schema, table),
            join=sql.SQL(join.replace("{schema}", '"' + schema.replace('"', '""') + '"')),
        )
        ordering = [n for n in order if n in available]
        if ordering:
            query = sql.SQL("{} order by {}").format(query, _columns(ordering, available))
        return sql.SQL("{} limit {}").format(query, sql.Literal(MAX_ROWS))

    return build


def _period(frame: pd.DataFrame) -> str:
    return next(c for c in PERIOD_COLUMNS if c in frame.columns)


def _period_total(share: str, weight: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Adds ``<share>_month_total``: the month's sum of ``share``, where the month has any
    ``weight`` (a month with nothing lost has no shares to sum)."""

    def derive(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        period = _period(frame)
        grouped = frame.groupby(period, dropna=False)
        total = grouped[share].transform(lambda s: s.sum(min_count=1))
        has_weight = grouped[weight].transform(lambda s: s.fillna(0).sum()) > 0
        frame[f"{share}_month_total"] = total.where(has_weight).astype(float)
        return frame

    return derive


def _chain(*steps: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def derive(frame: pd.DataFrame) -> pd.DataFrame:
        for step in steps:
            frame = step(frame)
        return frame

    return derive


def _non_negative(*columns: str) -> list[Expectation]:
    ge = _gx()
    return [
        ge.ExpectColumnValuesToBeBetween(column=c, min_value=0, description=f"{c} is not negative")
        for c in columns
    ]


def _share(*columns: str) -> list[Expectation]:
    ge = _gx()
    return [
        ge.ExpectColumnValuesToBeBetween(
            column=c, min_value=0, max_value=1, description=f"{c} is within [0, 1]"
        )
        for c in columns
    ]


def _sums_to_one(share: str) -> Expectation:
    return _gx().ExpectColumnValuesToBeBetween(
        column=f"{share}_month_total",
        min_value=1 - SHARE_TOLERANCE,
        max_value=1 + SHARE_TOLERANCE,
        description=f"{share} sums to 1 in every month",
    )


def _resolves(column: str, target: str) -> Expectation:
    return _gx().ExpectColumnValuesToBeInSet(
        column=column, value_set=[True], description=f"deal_key resolves in {target}"
    )


def _unique_key(*columns: str) -> list[Expectation]:
    ge = _gx()
    out: list[Expectation] = [
        ge.ExpectColumnValuesToNotBeNull(column=c, description=f"{c} is set") for c in columns
    ]
    if len(columns) == 1:
        out.append(ge.ExpectColumnValuesToBeUnique(column=columns[0], description=f"{columns[0]} is unique"))
    else:
        out.append(
            ge.ExpectCompoundColumnsToBeUnique(
                column_list=list(columns), description=f"({', '.join(columns)}) is unique"
            )
        )
    return out


# -- the suites ---------------------------------------------------------------------------------
def _fct_deals(now: dt.datetime) -> list[Expectation]:
    ge = _gx()
    return [
        *_unique_key("deal_key"),
        ge.ExpectColumnValuesToBeInSet(
            column="status", value_set=list(DEAL_STATUSES), description="status is open, won or lost"
        ),
        ge.ExpectColumnValuesToNotBeNull(column="status", description="status is set"),
        *_non_negative("amount", "amount_base", "cycle_days"),
    ]


def _fct_lost_deals(now: dt.datetime) -> list[Expectation]:
    ge = _gx()
    return [
        *_unique_key("deal_key"),
        _resolves("in_fct_deals", "fct_deals"),
        ge.ExpectColumnValuesToBeInSet(
            column="status_in_fct_deals", value_set=["lost"], description="the deal is lost in fct_deals"
        ),
        *_non_negative("amount_base", "cycle_days"),
    ]


def _fct_stage_transitions(now: dt.datetime) -> list[Expectation]:
    ge = _gx()
    return [
        ge.ExpectColumnValuesToNotBeNull(column="deal_key", description="deal_key is set"),
        _resolves("in_fct_deals", "fct_deals"),
        ge.ExpectColumnValuesToNotBeNull(column="transitioned_at", description="transitioned_at is set"),
        *_non_negative("hours_in_from_stage"),
    ]


def _rpt_loss_by_stage(now: dt.datetime) -> list[Expectation]:
    return [
        *_non_negative("lost_deals", "lost_amount_base"),
        *_share("lost_deals_share", "lost_amount_share"),
        _gx().ExpectColumnValuesToNotBeNull(column="lost_deals_share", description="lost_deals_share is set"),
        _sums_to_one("lost_deals_share"),
        _sums_to_one("lost_amount_share"),
    ]


_rpt_loss_by_reason = _rpt_loss_by_stage


def _rpt_loss_by_manager(now: dt.datetime) -> list[Expectation]:
    ge = _gx()
    return [
        *_non_negative("closed_deals", "lost_deals", "lost_amount_base"),
        *_share("loss_rate", "share_of_all_losses"),
        ge.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="closed_deals", column_B="lost_deals", or_equal=True, ignore_row_if="either_value_is_missing",
            description="lost_deals is at most closed_deals",
        ),
        _sums_to_one("share_of_all_losses"),
    ]  # fmt: skip


def _rpt_funnel_conversion(now: dt.datetime) -> list[Expectation]:
    ge = _gx()
    return [
        *_non_negative("reached_stage", "reached_next_stage"),
        *_share("conversion_rate", "target_rate"),
        ge.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="reached_stage", column_B="reached_next_stage", or_equal=True,
            ignore_row_if="either_value_is_missing", description="reached_next_stage is at most reached_stage",
        ),
    ]  # fmt: skip


def _dq_lost_deal_issues(now: dt.datetime) -> list[Expectation]:
    ge = _gx()
    return [
        *_unique_key("deal_key", "issue_type"),
        ge.ExpectColumnValuesToBeInSet(
            column="issue_type", value_set=list(ISSUE_TYPES),
            description="issue_type is one of " + ", ".join(ISSUE_TYPES),
        ),
        ge.ExpectColumnValuesToNotBeNull(column="first_detected_at", description="first_detected_at is set"),
        _resolves("in_fct_deals", "fct_deals (open issues)"),
    ]  # fmt: skip


def _rpt_customer_history(now: dt.datetime) -> list[Expectation]:
    return [*_unique_key("customer_key"), *_non_negative("relationship_days", "won_deals", "lost_deals")]


def _open_issue_resolves(available: frozenset[str]) -> str:
    """A fixed issue may outlive its deal (deleted at the source): open issues must resolve."""
    if "resolved_at" in available:
        return "(d.deal_key is not null or t.resolved_at is not null) as in_fct_deals"
    return "(d.deal_key is not null) as in_fct_deals"


def _join(target: str) -> str:
    return f"left join (select distinct deal_key, status from {{schema}}.{target}) as d on d.deal_key = t.deal_key"


def _mart_suites() -> dict[str, Suite]:
    def suite(
        model: str,
        columns: tuple[str, ...],
        index: tuple[str, ...],
        expectations: Callable[[dt.datetime], list[Expectation]],
        extra: Extra = "",
        join: str = "",
        requires: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
        derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
        monthly: bool = False,
    ) -> Suite:
        read = (*columns, *optional, *(PERIOD_COLUMNS if monthly else ()))
        return Suite(
            name=f"marts__{model}",
            schema=MARTS_SCHEMA,
            table=model,
            severity="error",
            required_columns=columns,
            index_columns=index if not monthly else (*PERIOD_COLUMNS, *index),
            query=_select(model, read, extra=extra, join=join, order=index),
            expectations=expectations,
            derive=derive,
            requires_tables=requires,
            alternatives={"month": PERIOD_COLUMNS} if monthly else {},
        )

    resolves = "(d.deal_key is not null) as in_fct_deals, d.status as status_in_fct_deals"
    suites = [
        suite("fct_deals", ("deal_key", "status", "amount", "amount_base", "cycle_days"), ("deal_key",), _fct_deals),
        suite("fct_lost_deals", ("deal_key", "amount_base", "cycle_days"), ("deal_key",), _fct_lost_deals,
              extra=resolves, join=_join("fct_deals"), requires=("fct_deals",)),
        suite("fct_stage_transitions", ("deal_key", "transitioned_at", "hours_in_from_stage"),
              ("deal_key", "transitioned_at"), _fct_stage_transitions,
              extra=resolves, join=_join("fct_deals"), requires=("fct_deals",)),
        suite("rpt_loss_by_stage", ("lost_deals", "lost_deals_share", "lost_amount_base", "lost_amount_share"),
              ("canonical_stage", "lost_at_canonical_stage"), _rpt_loss_by_stage, monthly=True,
              optional=("canonical_stage", "lost_at_canonical_stage"),
              derive=_chain(_period_total("lost_deals_share", "lost_deals"),
                            _period_total("lost_amount_share", "lost_amount_base"))),
        suite("rpt_loss_by_reason", ("lost_deals", "lost_deals_share", "lost_amount_base", "lost_amount_share"),
              ("loss_reason_code", "loss_reason_name"), _rpt_loss_by_reason, monthly=True,
              optional=("loss_reason_code", "loss_reason_name"),
              derive=_chain(_period_total("lost_deals_share", "lost_deals"),
                            _period_total("lost_amount_share", "lost_amount_base"))),
        suite("rpt_loss_by_manager", ("closed_deals", "lost_deals", "loss_rate", "lost_amount_base",
                                      "share_of_all_losses"),
              ("manager_key", "manager_name"), _rpt_loss_by_manager, monthly=True,
              optional=("manager_key", "manager_name"),
              derive=_period_total("share_of_all_losses", "lost_deals")),
        suite("rpt_funnel_conversion", ("reached_stage", "reached_next_stage", "conversion_rate", "target_rate"),
              ("week_start", "week", "manager_key", "canonical_stage"), _rpt_funnel_conversion,
              optional=("week_start", "week", "manager_key", "canonical_stage")),
        suite("rpt_customer_history", ("customer_key", "relationship_days", "won_deals", "lost_deals"),
              ("customer_key",), _rpt_customer_history),
        suite("dq_lost_deal_issues", ("deal_key", "issue_type", "first_detected_at"), ("deal_key", "issue_type"),
              _dq_lost_deal_issues, join=_join("fct_deals"), requires=("fct_deals",), extra=_open_issue_resolves),
    ]  # fmt: skip
    return {s.table: s for s in suites}


MART_SUITES: dict[str, Suite] = _mart_suites()
