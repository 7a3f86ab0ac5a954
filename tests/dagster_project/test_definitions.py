"""The Dagster definitions load without touching the warehouse, and read as one graph."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.support import DEMO_ENV, PROJECT_ROOT


@pytest.fixture(scope="module")
def defs(dbt_manifest: Path) -> dg.Definitions:
    # what a fresh import sees: no warehouse, no secrets in the environment
    for name in [m for m in sys.modules if m.startswith("dagster_project")]:
        del sys.modules[name]
    module = importlib.import_module("dagster_project.definitions")
    return module.defs


def asset_graph(defs: dg.Definitions):
    return defs.resolve_asset_graph()


def test_import_touches_no_database_and_reads_no_secret(dbt_manifest: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    env = {k: v for k, v in os.environ.items() if k not in DEMO_ENV and not k.startswith("DWH_")}
    env.update(DWH_DATA_DIR=str(data_dir), PYTHONPATH=str(PROJECT_ROOT))
    code = "import dagster_project.definitions as d; print(len(list(d.defs.resolve_asset_graph().get_all_asset_keys())))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 20
    assert not data_dir.exists(), "importing the definitions must not start the embedded warehouse"


def test_definitions_hold_the_whole_graph(defs: dg.Definitions) -> None:
    graph = asset_graph(defs)
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"config/stages", "raw_amocrm/leads", "raw_bitrix24/deals", "raw_onec/deals"} <= keys
    assert "staging/stg_config__stages" in keys


def test_every_asset_has_a_description_and_a_group(defs: dg.Definitions) -> None:
    graph = asset_graph(defs)
    missing = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        if not (node.description or "").strip() or not node.group_name or node.group_name == "default":
            missing.append(key.to_user_string())
    assert not missing, f"assets without a description or group: {missing}"


def test_dbt_sources_resolve_to_the_assets_that_land_them(defs: dg.Definitions) -> None:
    graph = asset_graph(defs)
    stages = graph.get(dg.AssetKey(["staging", "stg_config__stages"]))
    assert dg.AssetKey(["config", "stages"]) in stages.parent_keys
    assert graph.get(dg.AssetKey(["config", "stages"])).is_materializable, "the source is landed by an asset"


def test_dbt_tests_surface_as_asset_checks(defs: dg.Definitions) -> None:
    graph = asset_graph(defs)
    checks = {c.name for c in graph.asset_check_keys}
    assert any(name.startswith("unique_stg_config__stages") for name in checks), sorted(checks)[:10]


def test_extraction_schedules_exist_and_are_off_by_default(defs: dg.Definitions) -> None:
    schedules = {s.name: s for s in defs.schedules}  # type: ignore[union-attr]
    assert set(schedules) == {"hourly_refresh", "nightly_reconciliation"}
    for schedule in schedules.values():
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    reconcile = defs.resolve_job_def("warehouse_reconcile")
    assert reconcile.run_config["ops"]["extract_amocrm"]["config"]["mode"] == "full"  # type: ignore[index]


def test_the_instance_settings_load_with_one_extraction_per_pool(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster_project" / "dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.run_queue_config.max_concurrent_runs == 4
    finally:
        instance.dispose()
