"""The bulk path into the tests' warehouse: each API source of a sandbox World landed as
``sandbox.bulk`` renders it (what its API serves, without HTTP) with the extractors' upsert;
a file source's exports written beside the configuration and loaded by the file extractor
itself. With the demo configuration derived from the same world, dbt builds on records
exactly as served."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg

from dwh.config import load_config
from dwh.config.tables import write_config_tables
from extractors.common.runner import run_connection
from sandbox.bulk import APPEND_ONLY, LANDERS, Key, exports_folder, urls_for
from sandbox.files.render import write_exports
from sandbox.world.demo_config import write_demo_config
from sandbox.world.model import World
from tests.dbt.landing import land, reconcile, truncate_raw_tables


def write_world_config(conn: psycopg.Connection, world: World, config_dir: Path) -> None:
    """The demo company's configuration for ``world`` (as `python -m sandbox serve` writes it),
    loaded and written into the config.* tables. Needs the demo's secrets in the environment."""
    write_demo_config(world, urls_for(world, config_dir), config_dir)
    write_config_tables(conn, load_config(config_dir))
    conn.commit()


class UpsertLander:
    """Lands one connection's entities and remembers the ids each one served."""

    def __init__(self, conn: psycopg.Connection, system: str, connection_name: str):
        self.conn, self.system, self.connection_name = conn, system, connection_name
        self.served: dict[str, set[str]] = {}

    def __call__(self, entity: str, records: Iterable[Any], key: Key = "id", deleted: bool = False) -> None:
        rows = list(records)
        land(self.conn, self.system, self.connection_name, entity, rows, key=key, deleted=deleted)
        ids = self.served.setdefault(entity, set())
        if deleted:  # served as deleted: landed so, and not "present" for the reconciliation
            return
        for r in rows:
            ids.add(str(r[0] if key is None else key(r) if callable(key) else r[key]))

    def mark_unserved_deleted(self) -> None:
        for entity, ids in self.served.items():
            if (self.system, entity) not in APPEND_ONLY:
                reconcile(self.conn, self.system, self.connection_name, entity, ids)


def land_connection(
    conn: psycopg.Connection, world: World, system: str, source_name: str, **options: Any
) -> UpsertLander:
    """One API connection of ``world`` upserted as its API serves it (``options``: the
    system's lander's, e.g. a RosBiznesSoft installation)."""
    lander = UpsertLander(conn, system, source_name)
    LANDERS[system](lander, world, **options)
    conn.commit()
    return lander


def land_world(
    conn: psycopg.Connection, world: World, replace: bool = True, config_dir: Path | None = None
) -> None:
    """Land every source of ``world`` as its API serves it now. ``replace`` empties the raw
    tables first; otherwise records are upserted over what is there (as a re-extraction
    would), and records the API no longer serves are marked deleted (event streams keep
    what they had). A file source (needs ``config_dir``, where ``write_world_config`` wrote
    the configuration) exports its deals and history and the file extractor loads them."""
    if replace:
        truncate_raw_tables(conn)
    for source in world.sources:
        if source.system == "file":
            if config_dir is None:
                raise ValueError(f"{source.name}: a file source is landed from its exports: give config_dir")
            write_exports(world, source.name, exports_folder(config_dir, source.name))
            saved = os.environ.get("DWH_CONFIG_DIR")
            os.environ["DWH_CONFIG_DIR"] = str(config_dir)  # the connection's folder is relative to it
            try:
                with psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True) as own:
                    report = run_connection(
                        load_config(config_dir).sources.get(source.name), own, "incremental"
                    )
            finally:
                if saved is None:
                    os.environ.pop("DWH_CONFIG_DIR")
                else:
                    os.environ["DWH_CONFIG_DIR"] = saved
            if report.error or report.rejects:
                raise AssertionError(f"{source.name}: {report.error or report.rejects}")
            continue
        lander = land_connection(conn, world, source.system, source.name)
        if not replace:
            lander.mark_unserved_deleted()
