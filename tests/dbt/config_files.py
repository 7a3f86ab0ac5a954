"""A company's configuration written as files, loaded as the product loads it, and written
into the config.* tables dbt reads."""

from __future__ import annotations

from pathlib import Path

import psycopg

from dwh.config import load_config
from dwh.config.tables import write_config_tables

ALERTS = """
channels: {}
recipients: {}
"""


def write_config(conn: psycopg.Connection, folder: Path, sources_yaml: str, funnel_yaml: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sources.yaml").write_text(sources_yaml, encoding="utf-8")
    (folder / "funnel.yaml").write_text(funnel_yaml, encoding="utf-8")
    (folder / "alerts.yaml").write_text(ALERTS, encoding="utf-8")
    write_config_tables(conn, load_config(folder))
    conn.commit()
