"""Where the project keeps its files. Every path can be moved by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Local state: the embedded PostgreSQL, Dagster's home, exports, the outbox."""
    return Path(os.environ.get("DWH_DATA_DIR") or PROJECT_ROOT / ".data").resolve()


def config_dir() -> Path:
    """The company's configuration: sources.yaml, funnel.yaml, alerts.yaml."""
    return Path(os.environ.get("DWH_CONFIG_DIR") or PROJECT_ROOT / "config").resolve()


def dbt_project_dir() -> Path:
    return PROJECT_ROOT / "dbt"
