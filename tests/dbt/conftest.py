"""dbt against the session's private warehouse: a runner, and a clean slate of raw tables."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from dwh.warehouse import Target, dbt_env
from tests.dbt.landing import create_raw_tables, truncate_raw_tables
from tests.support import DEMO_ENV, PROJECT_ROOT

DBT_DIR = PROJECT_ROOT / "dbt"
# the models of the deal warehouse: staging of config and of the systems the marts read, and what is built on them
DEAL_MODELS = ("--select", "path:models/staging/config", "path:models/staging/amocrm", "path:models/staging/bitrix24",
               "path:models/staging/onec", "path:models/staging/creatio", "path:models/staging/megaplan",
               "path:models/staging/rosbiznessoft", "path:models/staging/file", "path:models/intermediate",
               "path:models/marts")  # fmt: skip


class DbtFailed(AssertionError):
    pass


@dataclass
class Dbt:
    """`dbt <command>` on the project, as a subprocess, with its own target and log folders."""

    env: dict[str, str]
    target_path: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(DBT_DIR),
                   "--project-dir", str(DBT_DIR), "--target-path", str(self.target_path),
                   "--log-path", str(self.target_path / "logs")]  # fmt: skip
        result = subprocess.run(command, cwd=DBT_DIR, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise DbtFailed(f"dbt {' '.join(args)} failed:\n{_failures(result.stdout)}")
        return result

    @property
    def manifest(self) -> Path:
        return self.target_path / "manifest.json"


def _failures(stdout: str) -> str:
    lines = stdout.splitlines()
    keep: set[int] = set()
    for i, line in enumerate(lines):
        if "ERROR" in line or "FAIL" in line or "Error" in line:
            keep.update(range(i, min(len(lines), i + 25)))
    return "\n".join(lines[i] for i in sorted(keep)) or stdout[-4000:]


@pytest.fixture(scope="session")
def dbt(warehouse: Target, tmp_path_factory: pytest.TempPathFactory) -> Dbt:
    env = {**os.environ, **DEMO_ENV, **dbt_env(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return Dbt(env=env, target_path=tmp_path_factory.mktemp("dbt-target"))


@contextmanager
def clean_warehouse(warehouse: Target) -> Iterator[psycopg.Connection]:
    """An autocommit connection (so that no test holds a lock dbt waits for) to the session's
    warehouse with every raw table present and empty, the issue memory (dq_lost_deal_issues)
    forgotten, and the demo's secrets in the environment for the configuration loader."""
    with pytest.MonkeyPatch.context() as env, psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
        for name, value in DEMO_ENV.items():
            env.setenv(name, value)
        create_raw_tables(conn)
        truncate_raw_tables(conn)
        conn.execute("drop table if exists marts.dq_lost_deal_issues")
        yield conn
