"""Incremental builds of the deal models: a build with nothing new writes nothing; after the
world moves on, and after a stage, a reason and a manager are re-mapped in the configuration,
an incremental build gives exactly the tables a full refresh gives (every mart and every
incremental intermediate model), and the first of them writes only the deals that changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from dwh.warehouse import Target
from sandbox.world.advance import advance
from sandbox.world.generate import generate
from sandbox.world.model import World
from tests.dbt.conftest import DEAL_MODELS, Dbt, clean_warehouse
from tests.dbt.world_landing import land_world, write_world_config

SEED, DEALS = 20251124, 400
INCREMENTAL_MODELS = ("int_canonical_stage_stays", "int_deal_milestones", "int_deals_enriched", "fct_deals",
                      "fct_stage_transitions")  # fmt: skip
# the issue memory keeps when an issue was first seen, which a full refresh cannot know
NOT_COMPARED = ("dq_lost_deal_issues",)


@dataclass
class Built:
    world: World
    conn: psycopg.Connection
    config_dir: Path


@pytest.fixture(scope="module")
def built(warehouse: Target, dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("incremental-world")
    world = generate(SEED, DEALS)
    with clean_warehouse(warehouse) as conn:
        write_world_config(conn, world, folder / "config")
        land_world(conn, world, config_dir=folder / "config")
        dbt("run", "--full-refresh", *DEAL_MODELS)
        yield Built(world, conn, folder / "config")


def test_a_build_with_nothing_new_writes_nothing(built: Built, dbt: Dbt) -> None:
    dbt("run", *DEAL_MODELS)
    written = _rows_written(dbt)
    assert {m: written[m] for m in INCREMENTAL_MODELS} == dict.fromkeys(INCREMENTAL_MODELS, 0)


def test_changes_and_remappings_build_what_a_full_refresh_builds(built: Built, dbt: Dbt) -> None:
    """Runs last: it moves the module's world on and edits its configuration."""
    conn = built.conn
    changes = advance(built.world, 15, seed=3)
    assert changes.created and changes.updated
    land_world(conn, built.world, replace=False, config_dir=built.config_dir)
    as_of = ("--vars", json.dumps({"as_of": built.world.now.isoformat()}))  # time-dependent marts compare
    dbt("run", *DEAL_MODELS, *as_of)
    written = _rows_written(dbt)
    deals = conn.execute("select count(*) from marts.fct_deals").fetchone()[0]
    assert all(written[m] > 0 for m in INCREMENTAL_MODELS), written
    assert written["int_deals_enriched"] < deals / 2, "only the changed deals are rebuilt"
    before_remapping = _snapshot(conn, "marts.fct_deals")

    conn.execute("update config.stage_mappings set stage_code = 'proposal' where stage_code = 'contact'")
    conn.execute(
        "update config.reason_mappings set reason_code = (select max(reason_code) from config.reason_mappings)"
        " where reason_code = (select min(reason_code) from config.reason_mappings)"
    )
    conn.execute(
        "update config.people set email = 'renamed.' || email where email = (select min(email) from config.people)"
    )
    dbt("run", *DEAL_MODELS, *as_of)
    incremental = {table: _snapshot(conn, table) for table in _compared_tables(conn)}
    assert incremental["marts.fct_deals"] != before_remapping, "the re-mappings changed the deals"

    dbt("run", "--full-refresh", *DEAL_MODELS, *as_of)
    differing = [table for table, rows in incremental.items() if _snapshot(conn, table) != rows]
    assert differing == [], "the incremental build differs from a full refresh"


def _compared_tables(conn: psycopg.Connection) -> list[str]:
    marts = [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' and table_type = 'BASE TABLE'"
    ).fetchall()]  # fmt: skip
    assert {"fct_deals", "fct_stage_transitions", "fct_lost_deals"} <= set(marts)
    intermediate = [f"intermediate.{m}" for m in INCREMENTAL_MODELS if m.startswith("int_")]
    return sorted(f"marts.{t}" for t in marts if t not in NOT_COMPARED) + intermediate


def _snapshot(conn: psycopg.Connection, table: str) -> list[str]:
    return sorted(repr(tuple(r)) for r in conn.execute(f"select * from {table}").fetchall())


def _rows_written(dbt: Dbt) -> dict[str, int]:
    results = json.loads((dbt.target_path / "run_results.json").read_text(encoding="utf-8"))["results"]
    return {r["unique_id"].split(".")[-1]: r["adapter_response"].get("rows_affected", 0) for r in results}
