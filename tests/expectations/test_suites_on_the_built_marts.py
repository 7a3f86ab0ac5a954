"""Every suite passes on the marts dbt builds from the sandbox's world: the invariants the
suites hold the marts to are the ones the models keep."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from dwh.bootstrap import bootstrap
from dwh.warehouse import Target, dbt_env
from expectations.marts import MART_SUITES
from expectations.raw import RAW_SUITES
from expectations.runner import run_suite
from sandbox.world.generate import generate
from tests.dbt.landing import create_raw_tables
from tests.dbt.world_landing import land_world, write_world_config
from tests.expectations.support import DATABASE, quality_database_url, reset_schemas  # noqa: F401
from tests.support import DEMO_ENV, PROJECT_ROOT


@pytest.mark.slow
def test_every_suite_passes_on_the_marts_built_from_the_sandbox(
    warehouse: Target,
    quality_database_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)
    reset_schemas(quality_database_url)
    private = dataclasses.replace(warehouse, dbname=DATABASE)
    bootstrap(private)
    with psycopg.connect(private.conninfo()) as conn:
        conn.execute("drop schema if exists staging cascade")
        conn.execute("drop schema if exists intermediate cascade")
        conn.commit()
        world = generate(seed=5, deals=150)
        create_raw_tables(conn)
        write_world_config(conn, world, tmp_path / "config")
        land_world(conn, world, config_dir=tmp_path / "config")

    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, **dbt_env(private), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(
        [str(dbt), "run", "--select", "+marts", "--profiles-dir", ".", "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        cwd=PROJECT_ROOT / "dbt", env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]

    with psycopg.connect(private.conninfo(), autocommit=True) as conn:
        for suite in [*MART_SUITES.values(), *RAW_SUITES.values()]:
            outcome = run_suite(conn, suite)
            assert outcome.success, outcome.describe()
            assert outcome.rows_checked > 0, f"{suite.qualified} is empty: nothing was checked"
