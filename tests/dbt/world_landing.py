"""The bulk path: a sandbox World rendered by the stand-ins' own render functions (what
their APIs serve) and landed straight into the raw tables, without HTTP; a file source's
exports written beside the configuration and loaded by the file extractor itself. With the
demo configuration derived from the same world, dbt builds on records exactly as served."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from dwh.config import load_config
from dwh.config.tables import write_config_tables
from extractors.common.runner import run_connection
from sandbox.amocrm import render as amo
from sandbox.bitrix24.render import Portal
from sandbox.creatio import render as creatio
from sandbox.files.render import write_exports
from sandbox.megaplan.render import Renderer as MegaplanRenderer
from sandbox.onec import render as onec
from sandbox.onec import schema as onec_schema
from sandbox.rosbiznessoft.render import Renderer as RbsRenderer
from sandbox.world.demo_config import RBS_INSTALLATION, write_demo_config
from sandbox.world.model import World
from tests.dbt.landing import land, reconcile, truncate_raw_tables

URLS = {
    "amo_retail": "http://127.0.0.1:18081",
    "b24_wholesale": "http://127.0.0.1:18082",
    "erp": "http://127.0.0.1:18083",
}

Key = str | Callable[[Mapping[str, Any]], object] | None

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
APPEND_ONLY = {("amocrm", "events")}  # event streams: what was landed stays


EXPORTS = "exports"  # a file source's exports: <config dir>/../exports/<source name>
CREATIO_SETS = {  # raw table -> OData entity set
    "opportunities": "Opportunity", "stage_history": "OpportunityInStage", "stages": "OpportunityStage",
    "close_reasons": "OpportunityCloseReason", "users": "SysAdminUnit", "contacts": "Contact", "accounts": "Account",
}  # fmt: skip


def urls_for(world: World, config_dir: Path | None = None) -> dict[str, str]:
    urls = {s.name: URLS.get(s.name, f"http://127.0.0.1:{18090 + i}") for i, s in enumerate(world.sources)}
    for source in world.sources:
        if source.system == "file" and config_dir is not None:
            urls[source.name] = str(exports_folder(config_dir, source.name))
    return urls


def exports_folder(config_dir: Path, source_name: str) -> Path:
    return config_dir.resolve().parent / EXPORTS / source_name


def write_world_config(conn: psycopg.Connection, world: World, config_dir: Path) -> None:
    """The demo company's configuration for ``world`` (as `python -m sandbox serve` writes it),
    loaded and written into the config.* tables. Needs the demo's secrets in the environment."""
    write_demo_config(world, urls_for(world, config_dir), config_dir)
    write_config_tables(conn, load_config(config_dir))
    conn.commit()


class _Lander:
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


def _amo_leads(rendered: amo.Rendered) -> list[dict[str, Any]]:
    """Leads as `GET /api/v4/leads?with=contacts,loss_reason` serves them."""
    leads = []
    for lead in rendered.leads:
        embedded = dict(lead["_embedded"])
        embedded["contacts"] = rendered.lead_contacts.get(lead["id"], [])
        embedded["loss_reason"] = rendered.lead_loss_reason.get(lead["id"], [])
        leads.append({**lead, "_embedded": embedded})
    return leads


def land_amocrm(lander: _Lander, world: World) -> None:
    account = amo.account_for(world, lander.connection_name, urls_for(world)[lander.connection_name])
    rendered = amo.render(world, lander.connection_name, account)
    lander("leads", _amo_leads(rendered))
    lander("leads", rendered.deleted_leads, deleted=True)
    lander("pipelines", rendered.pipelines)
    lander("loss_reasons", rendered.loss_reasons)
    lander("events", rendered.events)
    lander("users", rendered.users)
    lander("notes", rendered.notes)
    lander("contacts", rendered.contacts)
    lander("companies", rendered.companies)


def land_bitrix24(lander: _Lander, world: World) -> None:
    portal = Portal(world, lander.connection_name)
    lander("deals", portal.deals, key="ID")
    lander("stage_history", portal.stage_history, key="ID")
    lander("categories", portal.categories)
    lander("statuses", portal.statuses, key="ID")
    lander("deal_fields", portal.deal_fields.items(), key=None)
    lander("users", portal.users, key="ID")
    lander("timeline_comments", [c for rows in portal.timeline_comments.values() for c in rows], key="ID")
    lander("companies", portal.companies, key="ID")
    lander("contacts", portal.contacts, key="ID")
    lander("requisites", portal.requisites, key="ID")


def land_onec(lander: _Lander, world: World) -> None:
    for entity, (set_name, key) in ONEC_SETS.items():
        lander(entity, onec.render(world, lander.connection_name, set_name), key=key)


def land_megaplan(lander: _Lander, world: World) -> None:
    """As the extractor lands them: deals from the collection, a deal's status history and
    comments as ``<deal id>|<row id>``, custom field definitions by name."""
    site = MegaplanRenderer(world, lander.connection_name)
    deals = site.deals()
    lander("deals", [(d.id, site.deal(d, card=False)) for d in deals], key=None)
    lander("programs", [(p.id, site.program(p, card=False)) for p in site.pipelines], key=None)
    lander("program_states", [s for p in site.pipelines for s in site.states(p)])
    lander(
        "status_history", [(f"{d.id}|{r['id']}", r) for d in deals for r in site.status_history(d)], key=None
    )
    lander("comments", [(f"{d.id}|{c.id}", site.comment(d, c)) for d in deals for c in d.comments], key=None)
    lander("employees", site.employees())
    lander("contractor_companies", site.contractor_companies())
    lander("deal_fields", site.deal_field_definitions(), key="name")


def land_creatio(lander: _Lander, world: World) -> None:
    """As served over OData: JSON, so amounts are numbers."""
    for entity, set_name in CREATIO_SETS.items():
        rows = creatio.render(world, lander.connection_name, set_name)
        lander(
            entity,
            [{k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows],
            key="Id",
        )


def land_rosbiznessoft(lander: _Lander, world: World) -> None:
    """As the extractor lands them: {structure, fields (as served), values (by meaning)}, the
    stage result read as open / won / lost, rows in the bin (visible 0) landed deleted."""
    installation = RBS_INSTALLATION
    site = RbsRenderer(world, lander.connection_name, installation)
    statuses = {installation.result_value(status): status for status in ("open", "won", "lost")}
    for meaning in RAW_TABLES_RBS:
        served = {row[installation.field("id")]: row for row in site.structure(meaning)}
        live, binned = [], []
        for values in getattr(site, meaning)():
            if meaning == "stages":
                values = {**values, "stage_status": statuses[values["stage_result"]]}
            record = {
                "structure": installation.structure(meaning),
                "fields": served[values["id"]],
                "values": values,
            }
            (binned if values.get("visible") == "0" else live).append((values["id"], record))
        lander(meaning, live, key=None)
        lander(meaning, binned, key=None, deleted=True)


RAW_TABLES_RBS = ("deals", "stage_history", "pipelines", "stages", "loss_reasons", "comments", "users",
                  "companies", "company_details")  # fmt: skip


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
    landers = {"amocrm": land_amocrm, "bitrix24": land_bitrix24, "onec": land_onec, "megaplan": land_megaplan,
               "creatio": land_creatio, "rosbiznessoft": land_rosbiznessoft}  # fmt: skip
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
        lander = _Lander(conn, source.system, source.name)
        landers[source.system](lander, world)
        if not replace:
            lander.mark_unserved_deleted()
