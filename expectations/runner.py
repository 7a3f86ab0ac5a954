"""Running a suite: read a bounded frame from the warehouse, validate it with Great
Expectations in an ephemeral context (nothing is written to disk), and sum the result up as
an ``Outcome``: which expectations failed, how many values were unexpected, and a few of the
offending rows.

Great Expectations is imported when a suite runs, never when this module is imported: the
Dagster definitions import the suites and must load fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations import Expectation

MAX_ROWS = 200_000  # the most recently loaded rows of a table are read, at most this many
SAMPLE_SIZE = 5  # offending rows kept per failed expectation

Severity = Literal["warn", "error"]


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold."""

    expectation: str  # e.g. "expect_column_values_to_not_be_null"
    column: str  # the column(s) it looked at
    meaning: str  # what it asks, in words
    unexpected_count: int
    sample: list[dict[str, Any]]  # a few offending rows: the row's key and the offending value

    def as_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "meaning": self.meaning,
            "unexpected_count": self.unexpected_count,
            "sample": self.sample,
        }


@dataclass(frozen=True)
class Outcome:
    suite: str
    table: str  # schema.table
    severity: Severity
    rows_checked: int = 0
    expectations: int = 0
    failures: list[Failure] = field(default_factory=list)
    no_data: bool = False
    table_missing: bool = False  # with no_data: the table does not exist (yet)
    problem: str | None = None  # the table could not be validated at all (its shape is wrong)

    @property
    def success(self) -> bool:
        return not self.failures and self.problem is None

    @property
    def unexpected_count(self) -> int:
        return sum(f.unexpected_count for f in self.failures)

    def sample(self, limit: int = SAMPLE_SIZE) -> list[dict[str, Any]]:
        """Offending rows across the failed expectations, each tagged with what it broke."""
        rows: list[dict[str, Any]] = []
        for f in self.failures:
            for row in f.sample:
                if len(rows) >= limit:
                    return rows
                rows.append({"broken": f.meaning, **row})
        return rows

    def describe(self) -> str:
        if self.problem:
            return f"{self.table}: {self.problem}"
        if self.no_data:
            return f"no data: {self.table} " + (
                "does not exist yet" if self.table_missing else "holds no rows yet"
            )
        if self.success:
            return f"{self.table}: {self.expectations} expectations hold on {self.rows_checked} rows"
        parts = [f"{f.meaning} ({f.unexpected_count})" for f in self.failures]
        return (
            f"{self.table}: {len(self.failures)} of {self.expectations} expectations failed on "
            f"{self.rows_checked} rows, {self.unexpected_count} unexpected value"
            f"{'' if self.unexpected_count == 1 else 's'}: " + "; ".join(parts)
        )


@dataclass(frozen=True)
class Suite:
    """What a suite needs: the table it guards, the columns it reads, how to read them and
    what to expect of them. ``query`` gets the schema and the table's actual columns (a mart
    may carry more than the contract) and returns the select; ``derive`` adds computed
    columns in pandas; ``alternatives`` names columns that go by one of several names."""

    name: str
    schema: str
    table: str
    severity: Severity
    required_columns: tuple[str, ...]
    index_columns: tuple[str, ...]  # what identifies an offending row in the sample
    query: Callable[[str, frozenset[str]], sql.Composable]  # (schema, columns) -> select
    expectations: Callable[[dt.datetime], list[Expectation]]
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    requires_tables: tuple[str, ...] = ()  # other tables of the same schema the query joins
    alternatives: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # one of these columns

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


def table_columns(conn: psycopg.Connection, schema: str, table: str) -> frozenset[str] | None:
    """The table's columns, or None when it does not exist."""
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
        (schema, table),
    ).fetchall()
    return frozenset(r[0] for r in rows) if rows else None


def read_frame(conn: psycopg.Connection, query: sql.Composable) -> pd.DataFrame:
    import pandas as pd

    with conn.cursor() as cur:
        cur.execute(query)
        names = [d.name for d in cur.description or []]
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=names)
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, Decimal)).any():
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def run_suite(conn: psycopg.Connection, suite: Suite, now: dt.datetime | None = None) -> Outcome:
    """Validate one table. A table that does not exist yet, or holds no rows, passes with
    ``no_data``; a table without the columns the suite reads fails with ``problem``."""
    now = now or dt.datetime.now(dt.UTC)
    base = Outcome(suite=suite.name, table=suite.qualified, severity=suite.severity)
    columns = table_columns(conn, suite.schema, suite.table)
    if columns is None:
        return replace(base, no_data=True, table_missing=True)
    missing = [c for c in suite.required_columns if c not in columns]
    for name, options in suite.alternatives.items():
        if not any(o in columns for o in options):
            missing.append(f"{name} (one of {', '.join(options)})")
    if missing:
        return replace(
            base, problem=f"lacks the columns {', '.join(missing)} (expected by the suite {suite.name})"
        )
    absent = [t for t in suite.requires_tables if table_columns(conn, suite.schema, t) is None]
    if absent:
        return replace(
            base,
            problem=f"cannot be checked: {', '.join(f'{suite.schema}.{t}' for t in absent)} does not exist",
        )
    frame = read_frame(conn, suite.query(suite.schema, columns))
    if frame.empty:
        return replace(base, no_data=True)
    if suite.derive is not None:
        frame = suite.derive(frame)
    expectations = suite.expectations(now)
    failures = validate(
        frame, suite.name, expectations, [c for c in suite.index_columns if c in frame.columns]
    )
    return replace(base, rows_checked=len(frame), expectations=len(expectations), failures=failures)


@functools.cache
def _context() -> Any:
    """One ephemeral context per process: nothing is stored, nothing is written to disk."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_pandas("warehouse")


def _batch_definition(name: str) -> Any:
    source = _context()
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        return asset.get_batch_definition("rows")
    except KeyError:
        return asset.add_batch_definition_whole_dataframe("rows")


def validate(
    frame: pd.DataFrame, name: str, expectations: Sequence[Expectation], index_columns: Sequence[str]
) -> list[Failure]:
    """Run ``expectations`` over ``frame`` in an ephemeral Great Expectations context."""
    import great_expectations as gx

    batch = _batch_definition(name).get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        gx.ExpectationSuite(name=name, expectations=list(expectations)),
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": list(index_columns),
            "partial_unexpected_count": SAMPLE_SIZE,
        },
    )
    failures = []
    for res in result.results:
        if res.success:
            continue
        config = res.expectation_config
        kwargs = config.kwargs
        column = kwargs.get("column") or ", ".join(
            kwargs.get("column_list") or [kwargs.get("column_A", ""), kwargs.get("column_B", "")]
        )
        raised = (res.exception_info or {}).get("raised_exception")
        if raised:
            message = (res.exception_info or {}).get("exception_message") or "the expectation could not run"
            failures.append(Failure(config.type, column, config.description or config.type, 0,
                                    [{"error": str(message)[:300]}]))  # fmt: skip
            continue
        details = res.result or {}
        count = int(details.get("unexpected_count") or 0)
        sample = [_clean(row) for row in (details.get("partial_unexpected_index_list") or [])[:SAMPLE_SIZE]]
        if not sample:
            sample = [
                {"value": _value(v)} for v in (details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
            ]
        failures.append(Failure(config.type, column, config.description or config.type, count, sample))
    return failures


def _value(value: Any) -> Any:
    """JSON-friendly: timestamps as ISO text, NaN as None, numpy scalars as Python ones."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return None if text == "NaT" else text
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, int | float | bool | str):
        return value
    return str(value)


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): _value(v) for k, v in row.items()}


def sample_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A Markdown table of sample rows (what the Dagster UI shows)."""
    rows = list(rows)
    if not rows:
        return "_no offending rows_"
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")[:120]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
