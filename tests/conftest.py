"""Fixtures shared by every test: a private embedded warehouse and the demo's env vars.

Tests never touch the developer's .data/: the session's warehouse lives in a temporary
folder on a free port.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dwh import server
from dwh.bootstrap import bootstrap
from dwh.warehouse import Target, target
from tests.support import DEMO_ENV, PROJECT_ROOT, free_port


@pytest.fixture(scope="session")
def warehouse_dir() -> Iterator[Path]:
    """A private data folder and port for the whole session, set in the environment.

    Its own short folder under /tmp, not pytest's rotating temporary folders: another pytest
    session's clean-up must never remove a running warehouse, and the server's socket path
    must stay under the Unix limit of 107 characters."""
    data = Path(tempfile.mkdtemp(prefix="lossdwh-"))
    saved = {
        k: os.environ.get(k) for k in ("DWH_DATA_DIR", "DWH_PG_PORT", "DWH_DATABASE_URL", "DAGSTER_HOME")
    }
    os.environ["DWH_DATA_DIR"] = str(data)
    os.environ["DWH_PG_PORT"] = str(free_port())
    os.environ["DAGSTER_HOME"] = str(data / "dagster")
    (data / "dagster").mkdir()
    os.environ.pop("DWH_DATABASE_URL", None)
    yield data
    server.stop(server.embedded_server())
    shutil.rmtree(data, ignore_errors=True)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def warehouse(warehouse_dir: Path) -> Target:
    """The session's running, bootstrapped warehouse."""
    tgt = target()
    bootstrap(tgt)
    return tgt


@pytest.fixture
def db(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo()) as conn:
        yield conn


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in DEMO_ENV.items():
        monkeypatch.setenv(k, v)
    return DEMO_ENV


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """``dbt parse``: the manifest Dagster's dbt assets are built from."""
    import subprocess
    import sys

    dbt = Path(sys.executable).parent / "dbt"
    env = {**os.environ, "DWH_PG_HOST": "unused", "DWH_PG_PORT": "5432", "DWH_PG_DBNAME": "unused",
           "DWH_PG_USER": "unused"}  # fmt: skip
    result = subprocess.run([str(dbt), "parse", "--quiet", "--profiles-dir", "."], cwd=PROJECT_ROOT / "dbt",
                            env=env, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = PROJECT_ROOT / "dbt" / "target" / "manifest.json"
    assert manifest.exists()
    return manifest
