"""The Great Expectations suites of ``expectations/`` as Dagster asset checks.

- ``gx_raw_shape`` on every raw table (``[raw_<system>, <entity>]``), one check op per
  system: severity WARN, not blocking (a raw shape problem is for an engineer to look at).
- ``gx_mart_invariants`` on every mart with a suite (``[marts, <model>]``), one check op:
  severity ERROR and blocking, so that what is downstream of a broken mart in the same run
  (the digest, the exports) is not built and nothing goes out with wrong numbers.

Each result carries the unexpected count, the failed expectations and a few offending rows
(their key and the offending value only) as metadata. A table that does not exist yet (no
connection of that system, a mart not built) passes with a "no data" description.
"""

import json
from collections.abc import Iterable

import dagster as dg

from dagster_project.lib.resources import WarehouseResource
from dwh.paths import dbt_project_dir
from expectations.marts import MART_SUITES, MARTS_SCHEMA
from expectations.raw import RAW_SUITES
from expectations.runner import Outcome, Suite, run_suite, sample_table

RAW_CHECK = "gx_raw_shape"
MART_CHECK = "gx_mart_invariants"
SYSTEMS = tuple(dict.fromkeys(system for system, _ in RAW_SUITES))  # every system with a raw suite


def check_result(outcome: Outcome, key: dg.AssetKey, name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN,
        description=outcome.describe()[:2000],
        metadata={
            "table": outcome.table,
            "rows_checked": outcome.rows_checked,
            "expectations": outcome.expectations,
            "unexpected_count": outcome.unexpected_count,
            "no_data": outcome.no_data,
            "failed_expectations": dg.MetadataValue.json([f.as_dict() for f in outcome.failures]),
            "sample": dg.MetadataValue.json(outcome.sample()),
            "sample_table": dg.MetadataValue.md(sample_table(outcome.sample())),
        },
    )


def _run(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    suites: dict[dg.AssetCheckKey, Suite],
):
    keys = sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string())
    with warehouse.connect() as conn:
        conn.autocommit = True  # read-only; a failed query must not poison the next suite
        for key in keys:
            suite = suites[key]
            try:
                outcome = run_suite(conn, suite)
            except Exception as exc:  # a suite that cannot run is a failed check, not a lost one
                context.log.error(f"{suite.qualified}: the suite {suite.name} could not run: {exc}")
                outcome = Outcome(suite.name, suite.qualified, suite.severity,
                                  problem=f"the suite could not run: {type(exc).__name__}: {exc}")  # fmt: skip
            context.log.info(outcome.describe())
            yield check_result(outcome, key.asset_key, key.name)


def raw_check(system: str) -> dg.AssetChecksDefinition:
    """The raw suites of one system, as one check op over its tables."""
    suites = {
        dg.AssetCheckKey(dg.AssetKey([f"raw_{s}", entity]), RAW_CHECK): suite
        for (s, entity), suite in RAW_SUITES.items()
        if s == system
    }

    @dg.multi_asset_check(
        name=f"gx_raw_{system}",
        specs=[
            dg.AssetCheckSpec(
                RAW_CHECK,
                asset=key.asset_key,
                blocking=False,
                description=f"Great Expectations: the records of {suite.qualified} have the "
                "API's shape (keys, types, unique ids, plausible dates and amounts).",
            )
            for key, suite in suites.items()
        ],  # fmt: skip
        can_subset=True,
        description=f"Great Expectations suites of the raw_{system} tables (severity WARN).",
    )
    def check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        yield from _run(context, warehouse, suites)

    return check


def build_raw_checks(systems: Iterable[str] = SYSTEMS) -> list[dg.AssetChecksDefinition]:
    return [raw_check(system) for system in systems]


def dbt_marts(manifest: str | None = None) -> set[str] | None:
    """The marts dbt builds (from its manifest), or None when there is no manifest yet."""
    path = dbt_project_dir() / "target" / "manifest.json" if manifest is None else manifest
    try:
        with open(path, encoding="utf-8") as f:
            nodes = json.load(f).get("nodes", {})
    except FileNotFoundError:
        return None
    return {
        n["name"]
        for n in nodes.values()
        if n.get("resource_type") == "model" and (n.get("config") or {}).get("schema") == MARTS_SCHEMA
    }


def build_mart_checks(models: Iterable[str] | None = None) -> list[dg.AssetChecksDefinition]:
    """One check op over the marts with a suite; ``models`` defaults to those dbt builds."""
    built = set(models) if models is not None else dbt_marts()
    names = sorted(m for m in MART_SUITES if built is None or m in built)
    if not names:
        return []
    suites = {dg.AssetCheckKey(dg.AssetKey([MARTS_SCHEMA, m]), MART_CHECK): MART_SUITES[m] for m in names}

    @dg.multi_asset_check(
        name="gx_marts",
        specs=[
            dg.AssetCheckSpec(
                MART_CHECK,
                asset=key.asset_key,
                blocking=True,
                description=f"Great Expectations: the invariants of {suite.qualified} hold "
                "(value sets, money, shares, keys); blocks what is downstream.",
            )
            for key, suite in suites.items()
        ],  # fmt: skip
        can_subset=True,
        description="Great Expectations suites of the marts (severity ERROR, blocking).",
    )
    def mart_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        yield from _run(context, warehouse, suites)

    return [mart_check]


defs = dg.Definitions(asset_checks=[*build_raw_checks(), *build_mart_checks()])
