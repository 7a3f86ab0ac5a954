"""Resources every domain uses. They read the environment and the configuration at run
time, never at import time."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import psycopg

from dwh import warehouse
from dwh.bootstrap import bootstrap, setup_lock
from dwh.config import Config, load_config
from extractors.common.runner import ensure_raw_tables


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: ``DWH_DATABASE_URL`` if set, else the embedded PostgreSQL (started on
    first use). Schemas, the BI role and every raw table are ensured once per process."""

    def target(self) -> warehouse.Target:
        tgt = warehouse.target()
        if tgt.describe() not in _BOOTSTRAPPED:
            bootstrap(tgt)
            with warehouse.connect(tgt, autocommit=True) as conn, conn.transaction():
                setup_lock(conn)
                ensure_raw_tables(conn)
            _BOOTSTRAPPED.add(tgt.describe())
        return tgt

    def connect(self) -> psycopg.Connection:
        return warehouse.connect(self.target())


_BOOTSTRAPPED: set[str] = set()


class CompanyConfigResource(dg.ConfigurableResource):
    """The company's configuration, validated. ``config_dir`` defaults to ``DWH_CONFIG_DIR``
    or ``config/``."""

    config_dir: str | None = None

    def load(self) -> Config:
        return load_config(Path(self.config_dir) if self.config_dir else None)
