"""Land records into the raw tables exactly as the extractors do (same table shape, same
upsert), so that dbt builds run on what the APIs serve."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psycopg
import yaml

from extractors.common.landing import RawLanding, RawRecord
from tests.support import PROJECT_ROOT

RAW_TABLES: dict[str, tuple[str, ...]] = {
    "amocrm": ("leads", "pipelines", "loss_reasons", "events", "users", "notes", "contacts", "companies"),
    "bitrix24": (
        "deals", "stage_history", "categories", "statuses", "deal_fields", "users", "timeline_comments",
        "companies", "contacts", "requisites",
    ),
    "onec": (
        "deals", "deal_kinds", "stages", "deal_stage_stats", "loss_reasons", "partners", "counterparties",
        "users", "currencies", "exchange_rates",
    ),
    "megaplan": (
        "deals", "programs", "program_states", "status_history", "comments", "employees", "contractor_companies",
        "deal_fields",
    ),
    "creatio": ("opportunities", "stage_history", "stages", "close_reasons", "users", "contacts", "accounts"),
    "rosbiznessoft": (
        "deals", "stage_history", "pipelines", "stages", "loss_reasons", "comments", "users", "companies",
        "company_details",
    ),
}  # fmt: skip


def declared_raw_tables() -> set[tuple[str, str]]:
    """Every (raw schema, table) a dbt source declares, whichever system it belongs to."""
    tables: set[tuple[str, str]] = set()
    for path in (PROJECT_ROOT / "dbt" / "models").rglob("_*__sources.yml"):
        for source in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("sources", []):
            schema = source.get("schema", source["name"])
            if schema.startswith("raw_"):
                tables |= {(schema, t["name"]) for t in source.get("tables", [])}
    return tables


def create_raw_tables(conn: psycopg.Connection) -> None:
    """Every raw table dbt reads, empty where nothing landed yet."""
    for schema, table in sorted(
        declared_raw_tables() | {(f"raw_{s}", e) for s, es in RAW_TABLES.items() for e in es}
    ):
        RawLanding(conn, schema.removeprefix("raw_"), "-").ensure(table)
    conn.commit()


def truncate_raw_tables(conn: psycopg.Connection) -> None:
    create_raw_tables(conn)
    for schema, table in sorted(declared_raw_tables()):
        conn.execute(f'truncate "{schema}"."{table}"')
    conn.commit()


def land(
    conn: psycopg.Connection,
    system: str,
    connection_name: str,
    entity: str,
    records: Iterable[Mapping[str, Any]] | Iterable[tuple[str, Mapping[str, Any]]],
    key: str | Callable[[Mapping[str, Any]], object] | None = "id",
    deleted: bool = False,
) -> int:
    """Upsert ``records`` as served. ``key`` names the id field or computes the id; with
    ``key=None`` the records are (id, record) pairs."""
    if entity not in RAW_TABLES[system]:
        raise ValueError(
            f"raw_{system} has no table {entity!r}: expected one of {', '.join(RAW_TABLES[system])}"
        )
    landing = RawLanding(conn, system, connection_name)
    rows = [_raw(r, key) for r in records]
    written = landing.upsert(entity, rows, deleted=deleted)
    conn.commit()
    return written


def reconcile(
    conn: psycopg.Connection, system: str, connection_name: str, entity: str, present: set[str]
) -> int:
    """Mark deleted every landed record of ``entity`` whose id is not in ``present``."""
    gone = RawLanding(conn, system, connection_name).reconcile(entity, present)
    conn.commit()
    return gone


def _raw(item: Any, key: str | Callable[[Mapping[str, Any]], object] | None) -> RawRecord:
    if key is None:
        record_id, record = item
        return RawRecord(id=str(record_id), record=dict(record))
    record_id = key(item) if callable(key) else item[key]
    return RawRecord(id=str(record_id), record=dict(item))
