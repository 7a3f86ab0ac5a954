"""The bulk path into the raw tables: a sandbox world rendered by the stand-ins' own render
functions (``sandbox.bulk``: exactly what their APIs serve) and COPY-ed into the raw landing
contract's tables, without HTTP; a file source's exports written beside the configuration and
loaded by the file extractor. For scale measurements of the warehouse, not of extraction.

``land_world`` fills empty tables with COPY. ``reland_world`` lands a changed world as an
extraction would: every record is staged with COPY and upserted only where it differs (so
``loaded_at`` moves only for changed records), records no longer served are marked deleted,
event streams keep what they had.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
import yaml

from benchmarks.common import PROJECT_ROOT
from dwh.config import load_config
from extractors.common.landing import DDL
from extractors.common.run import Mode
from extractors.common.runner import run_connection
from sandbox.bulk import APPEND_ONLY, LANDERS, Key, exports_folder
from sandbox.files.render import write_exports
from sandbox.world.model import World


def dbt_raw_sources() -> dict[str, list[str]]:
    """Every raw table the dbt project reads (its ``raw_*`` sources), by schema."""
    out: dict[str, list[str]] = {}
    for path in sorted((PROJECT_ROOT / "dbt" / "models").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for source in doc.get("sources") or []:
            schema = source.get("schema") or source.get("name", "")
            if schema.startswith("raw_"):
                out.setdefault(schema, []).extend(t["name"] for t in source.get("tables") or [])
    return out


def truncate_raw_tables(conn: psycopg.Connection) -> None:
    """Every raw table dbt reads (each one landed here among them), created where missing, emptied."""
    for schema, tables in dbt_raw_sources().items():
        conn.execute(f"create schema if not exists {schema}")
        for entity in tables:
            conn.execute(DDL.format(table=f"{schema}.{entity}"))
        conn.execute("truncate " + ", ".join(f"{schema}.{entity}" for entity in tables))
    conn.commit()


def _id(item: Any, key: Key) -> tuple[str, Any]:
    if key is None:
        record_id, record = item
        return str(record_id), record
    return str(key(item) if callable(key) else item[key]), item


def _copy(conn: psycopg.Connection, table: str, connection_name: str, records: Iterable[Any], key: Key,
          deleted: bool) -> tuple[int, set[str]]:  # fmt: skip
    ids: set[str] = set()
    n = 0
    with (
        conn.cursor() as cur,
        cur.copy(f"copy {table} (connection_name, id, record, is_deleted, deleted_at) from stdin") as copy,
    ):
        for item in records:
            record_id, record = _id(item, key)
            if record_id in ids:  # a record served twice lands once
                continue
            ids.add(record_id)
            copy.write_row((connection_name, record_id, json.dumps(record, ensure_ascii=False), deleted,
                            "now" if deleted else None))  # fmt: skip
            n += 1
    return n, ids


class _Lander:
    def __init__(self, conn: psycopg.Connection, system: str, connection_name: str, upsert: bool):
        self.conn, self.system, self.connection_name, self.upsert = conn, system, connection_name, upsert
        self.served: dict[str, set[str]] = {}
        self.rows = 0

    def __call__(self, entity: str, records: Iterable[Any], key: Key = "id", deleted: bool = False) -> None:
        table = f"raw_{self.system}.{entity}"
        if not self.upsert:
            n, ids = _copy(self.conn, table, self.connection_name, records, key, deleted)
        else:
            self.conn.execute(f"create temp table if not exists incoming (like {table} including defaults)")
            self.conn.execute("truncate incoming")
            n, ids = _copy(self.conn, "incoming", self.connection_name, records, key, deleted)
            append = (self.system, entity) in APPEND_ONLY
            self.conn.execute(f"""
                insert into {table} as t (connection_name, id, record, is_deleted, deleted_at)
                select connection_name, id, record, is_deleted, deleted_at from incoming
                on conflict (connection_name, id) do {"nothing" if append else '''update set
                    record = excluded.record, loaded_at = now(), is_deleted = excluded.is_deleted,
                    deleted_at = case when excluded.is_deleted then coalesce(t.deleted_at, now()) end
                where t.record is distinct from excluded.record
                   or t.is_deleted is distinct from excluded.is_deleted'''}""")  # fmt: skip
        self.conn.commit()
        self.rows += n
        if not deleted:
            self.served.setdefault(entity, set()).update(ids)

    def mark_unserved_deleted(self) -> None:
        for entity, ids in self.served.items():
            if (self.system, entity) in APPEND_ONLY:
                continue
            self.conn.execute("create temp table if not exists served_ids (id text primary key)")
            self.conn.execute("truncate served_ids")
            with self.conn.cursor() as cur, cur.copy("copy served_ids (id) from stdin") as copy:
                for i in ids:
                    copy.write_row((i,))
            self.conn.execute(f"""
                update raw_{self.system}.{entity} as t set is_deleted = true, deleted_at = now(), loaded_at = now()
                where t.connection_name = %s and not t.is_deleted
                  and not exists (select 1 from served_ids s where s.id = t.id)""", (self.connection_name,))  # fmt: skip
            self.conn.commit()


def _land_exports(
    conn: psycopg.Connection, world: World, source_name: str, config_dir: Path, mode: Mode
) -> int:
    """A file source: its exports written beside the configuration, loaded by the file extractor."""
    folder = exports_folder(config_dir, source_name)
    if mode == "full":  # an earlier world's exports are not this one's
        shutil.rmtree(folder, ignore_errors=True)
    write_exports(world, source_name, folder)
    os.environ["DWH_CONFIG_DIR"] = str(config_dir)  # the connection's folder is relative to it
    with psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True) as own:
        report = run_connection(load_config(config_dir).sources.get(source_name), own, mode)
    if report.status != "ok":
        raise RuntimeError(
            f"{source_name}: the file extractor {report.status}: {report.error or report.rejects}"
        )
    return sum(report.records.values())


def land_world(conn: psycopg.Connection, world: World, config_dir: Path,
               progress: Callable[[str], None] = print) -> int:  # fmt: skip
    """Empty the raw tables and COPY every API source of ``world`` in, a file source through
    its exports (beside ``config_dir``, where the demo configuration is); returns the rows landed."""
    truncate_raw_tables(conn)
    total = 0
    for source in world.sources:
        if source.system == "file":
            rows = _land_exports(conn, world, source.name, config_dir, "full")
        else:
            lander = _Lander(conn, source.system, source.name, upsert=False)
            LANDERS[source.system](lander, world)
            rows = lander.rows
        gc.collect()
        progress(f"  {source.name}: {rows:,} rows")
        total += rows
    conn.execute("analyze")
    conn.commit()
    return total


def reland_world(conn: psycopg.Connection, world: World, config_dir: Path,
                 progress: Callable[[str], None] = print) -> int:  # fmt: skip
    """Upsert what the sources serve now over what landed, as extraction would."""
    total = 0
    for source in world.sources:
        if source.system == "file":
            rows = _land_exports(conn, world, source.name, config_dir, "incremental")
        else:
            lander = _Lander(conn, source.system, source.name, upsert=True)
            LANDERS[source.system](lander, world)
            lander.mark_unserved_deleted()
            rows = lander.rows
        gc.collect()
        progress(f"  {source.name}: {rows:,} rows staged")
        total += rows
    conn.execute("analyze")
    conn.commit()
    return total
