"""The bulk path into the raw tables: a sandbox world rendered by the stand-ins' own render
functions (exactly what their APIs serve) and COPY-ed into the raw landing contract's tables,
without HTTP. For scale measurements of the warehouse, not of extraction.

``land_world`` fills empty tables with COPY. ``reland_world`` lands a changed world as an
extraction would: every record is staged with COPY and upserted only where it differs (so
``loaded_at`` moves only for changed records), records no longer served are marked deleted,
event streams keep what they had.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import psycopg
import yaml

from benchmarks import sandbox_speedups
from benchmarks.common import PROJECT_ROOT
from extractors.common.landing import DDL
from sandbox.amocrm import render as amo
from sandbox.bitrix24.render import Portal
from sandbox.onec import render as onec
from sandbox.onec import schema as onec_schema
from sandbox.world.model import World

sandbox_speedups.install()  # the Bitrix24 rendering of contacts is quadratic otherwise

Key = str | Callable[[Mapping[str, Any]], object] | None

RAW_TABLES: dict[str, tuple[str, ...]] = {
    "amocrm": ("leads", "pipelines", "loss_reasons", "events", "users", "notes", "contacts", "companies"),
    "bitrix24": ("deals", "stage_history", "categories", "statuses", "deal_fields", "users", "timeline_comments",
                 "companies", "contacts", "requisites"),
    "onec": ("deals", "deal_kinds", "stages", "deal_stage_stats", "loss_reasons", "partners", "counterparties",
             "users", "currencies", "exchange_rates"),
}  # fmt: skip
APPEND_ONLY = {("amocrm", "events")}
BASE_URLS = {"amo_retail": "http://127.0.0.1:18081", "b24_wholesale": "http://127.0.0.1:18082",
             "erp": "http://127.0.0.1:18083"}  # fmt: skip

ONEC_SETS: dict[str, tuple[str, Key]] = {
    "deals": (onec_schema.DEALS.name, "Ref_Key"),
    "deal_kinds": (onec_schema.DEAL_KINDS.name, "Ref_Key"),
    "stages": (onec_schema.STAGES.name, "Ref_Key"),
    "deal_stage_stats": (
        onec_schema.DEAL_STAGE_STATS.name,
        lambda r: f"{r['Сделка_Key']}|{r['ЭтапПроцесса_Key']}",
    ),
    "loss_reasons": (onec_schema.LOSS_REASONS.name, "Ref_Key"),
    "partners": (onec_schema.PARTNERS.name, "Ref_Key"),
    "counterparties": (onec_schema.COUNTERPARTIES.name, "Ref_Key"),
    "users": (onec_schema.USERS.name, "Ref_Key"),
    "currencies": (onec_schema.CURRENCIES.name, "Ref_Key"),
    "exchange_rates": (onec_schema.EXCHANGE_RATES.name, lambda r: f"{r['Валюта_Key']}|{r['Period']}"),
}


def urls_for(world: World) -> dict[str, str]:
    return {
        s.name: BASE_URLS.get(s.name, f"http://127.0.0.1:{18090 + i}") for i, s in enumerate(world.sources)
    }


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


def create_raw_tables(conn: psycopg.Connection) -> None:
    """The raw tables landed here, and, empty, those of the other systems dbt reads."""
    wanted = {f"raw_{system}": list(entities) for system, entities in RAW_TABLES.items()}
    for schema, tables in dbt_raw_sources().items():
        wanted.setdefault(schema, []).extend(t for t in tables if t not in wanted[schema])
    for schema, tables in wanted.items():
        conn.execute(f"create schema if not exists {schema}")
        for entity in tables:
            conn.execute(DDL.format(table=f"{schema}.{entity}"))
    conn.commit()


def truncate_raw_tables(conn: psycopg.Connection) -> None:
    create_raw_tables(conn)
    for system, entities in RAW_TABLES.items():
        conn.execute("truncate " + ", ".join(f"raw_{system}.{e}" for e in entities))
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


def _amo_leads(rendered: amo.Rendered) -> Iterator[dict[str, Any]]:
    """Leads as ``GET /api/v4/leads?with=contacts,loss_reason`` serves them."""
    for lead in rendered.leads:
        embedded = dict(lead["_embedded"])
        embedded["contacts"] = rendered.lead_contacts.get(lead["id"], [])
        embedded["loss_reason"] = rendered.lead_loss_reason.get(lead["id"], [])
        yield {**lead, "_embedded": embedded}


def _land_amocrm(lander: _Lander, world: World) -> None:
    account = amo.account_for(world, lander.connection_name, urls_for(world)[lander.connection_name])
    rendered = amo.render(world, lander.connection_name, account)
    lander("leads", _amo_leads(rendered))
    lander("leads", rendered.deleted_leads, deleted=True)
    for entity in ("pipelines", "loss_reasons", "events", "users", "notes", "contacts", "companies"):
        lander(entity, getattr(rendered, entity))
        setattr(rendered, entity, [])  # free as we go


def _land_bitrix24(lander: _Lander, world: World) -> None:
    portal = Portal(world, lander.connection_name)
    lander("deals", portal.deals, key="ID")
    del portal.__dict__["deals"]
    lander("stage_history", portal.stage_history, key="ID")
    del portal.__dict__["stage_history"]
    lander("categories", portal.categories)
    lander("statuses", portal.statuses, key="ID")
    lander("deal_fields", portal.deal_fields.items(), key=None)
    lander("users", portal.users, key="ID")
    lander("timeline_comments", (c for rows in portal.timeline_comments.values() for c in rows), key="ID")
    lander("companies", portal.companies, key="ID")
    lander("contacts", portal.contacts, key="ID")
    lander("requisites", portal.requisites, key="ID")


def _land_onec(lander: _Lander, world: World) -> None:
    for entity, (set_name, key) in ONEC_SETS.items():
        lander(entity, onec.render(world, lander.connection_name, set_name), key=key)


LANDERS = {"amocrm": _land_amocrm, "bitrix24": _land_bitrix24, "onec": _land_onec}


def land_world(conn: psycopg.Connection, world: World, progress: Callable[[str], None] = print) -> int:
    """Empty the raw tables and COPY every source of ``world`` in; returns the rows landed."""
    truncate_raw_tables(conn)
    total = 0
    for source in world.sources:
        lander = _Lander(conn, source.system, source.name, upsert=False)
        LANDERS[source.system](lander, world)
        gc.collect()
        progress(f"  {source.name}: {lander.rows:,} rows")
        total += lander.rows
    conn.execute("analyze")
    conn.commit()
    return total


def reland_world(conn: psycopg.Connection, world: World, progress: Callable[[str], None] = print) -> int:
    """Upsert what the sources serve now over what landed, as extraction would."""
    total = 0
    for source in world.sources:
        lander = _Lander(conn, source.system, source.name, upsert=True)
        LANDERS[source.system](lander, world)
        lander.mark_unserved_deleted()
        gc.collect()
        progress(f"  {source.name}: {lander.rows:,} rows staged")
        total += lander.rows
    conn.execute("analyze")
    conn.commit()
    return total
