"""From config/*.yaml to the config tables to dbt's staging models, through Dagster."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg

from dwh.warehouse import Target
from tests.support import PROJECT_ROOT


def test_config_tables_then_dbt_staging_with_passing_tests(
    warehouse: Target, dbt_manifest: Path, demo_env: dict[str, str], db: psycopg.Connection
) -> None:
    from dagster_project.definitions import defs

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    config_models = [k for k in keys if k.path[0] == "staging" and k.path[-1].startswith("stg_config__")]
    result = dg.materialize(
        assets=[*defs.assets],  # type: ignore[list-item]
        resources=defs.resources,
        selection=dg.AssetSelection.assets(*config_models) | dg.AssetSelection.key_prefixes("config"),
        raise_on_error=False,
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks = result.get_asset_check_evaluations()
    assert checks, "dbt tests ran as asset checks"
    failed = [c.check_name for c in checks if not c.passed]
    assert not failed, failed
    stages = db.execute(
        "select stage_code, stage_position from staging.stg_config__stages order by 2"
    ).fetchall()
    funnel = (PROJECT_ROOT / "config" / "funnel.yaml").read_text(encoding="utf-8")
    assert [code for code, _ in stages] == ["new", "contact", "proposal", "contract", "paid"]
    assert all(f"code: {code}" in funnel for code, _ in stages)
    assert db.execute("select count(*) from staging.stg_config__sources").fetchone()[0] == 7


def test_config_tables_are_replaced_not_appended(warehouse: Target, demo_env: dict[str, str], db) -> None:
    from dwh.config import load_config
    from dwh.config.tables import write_config_tables

    config = load_config(PROJECT_ROOT / "config")
    write_config_tables(db, config)
    counts = write_config_tables(db, config)
    assert db.execute("select count(*) from config.stages").fetchone()[0] == counts["stages"] == 5
    assert db.execute("select count(*) from config.loss_reasons").fetchone()[0] == len(
        config.funnel.loss_reasons
    )
