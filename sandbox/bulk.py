"""The sandbox's bulk path: a World rendered by the stand-ins' own render functions, records
exactly as each API serves them and as its extractor lands them, without HTTP.

``LANDERS[system](lander, world)`` hands every raw table of one API source to ``lander``, a
callable ``(entity, records, key="id", deleted=False)`` that writes them wherever it likes:
``key`` names the record's id field, computes the id from the record, or is ``None`` for
``(id, record)`` pairs; ``deleted`` marks records served as deleted. A file source has no
API: its exports are written (``sandbox.files.render.write_exports``) into
``exports_folder`` and loaded by the file extractor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from sandbox.amocrm import render as amo
from sandbox.bitrix24.render import Portal
from sandbox.creatio import render as creatio
from sandbox.megaplan.render import Renderer as MegaplanRenderer
from sandbox.onec import render as onec
from sandbox.onec import schema as onec_schema
from sandbox.rosbiznessoft.installation import Installation
from sandbox.rosbiznessoft.render import Renderer as RbsRenderer
from sandbox.serve import EXPORTS_FOLDER
from sandbox.world.demo_config import RBS_INSTALLATION
from sandbox.world.model import World

Key = str | Callable[[Mapping[str, Any]], object] | None


class Lander(Protocol):
    connection_name: str

    def __call__(
        self, entity: str, records: Iterable[Any], key: Key = "id", deleted: bool = False
    ) -> None: ...


URLS = {  # the stand-ins' default ports (`python -m sandbox serve --base-port 18081`)
    "amo_retail": "http://127.0.0.1:18081",
    "b24_wholesale": "http://127.0.0.1:18082",
    "erp": "http://127.0.0.1:18083",
}
APPEND_ONLY = {("amocrm", "events")}  # event streams: what was landed stays

ONEC_SETS: dict[str, tuple[str, Key]] = {  # raw table -> (OData entity set, id)
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
CREATIO_SETS = {  # raw table -> OData entity set
    "opportunities": "Opportunity", "stage_history": "OpportunityInStage", "stages": "OpportunityStage",
    "close_reasons": "OpportunityCloseReason", "users": "SysAdminUnit", "contacts": "Contact", "accounts": "Account",
}  # fmt: skip
RBS_TABLES = ("deals", "stage_history", "pipelines", "stages", "loss_reasons", "comments", "users",
              "companies", "company_details")  # fmt: skip


def exports_folder(config_dir: Path, source_name: str) -> Path:
    """Where a file source's exports go: ``<config dir>/../exports/<source name>``, as `serve` writes them."""
    return Path(config_dir).resolve().parent / EXPORTS_FOLDER / source_name


def urls_for(world: World, config_dir: Path | None = None) -> dict[str, str]:
    """Each source's URL for the demo configuration; a file source's exports folder beside ``config_dir``."""
    urls = {s.name: URLS.get(s.name, f"http://127.0.0.1:{18090 + i}") for i, s in enumerate(world.sources)}
    for source in world.sources:
        if source.system == "file" and config_dir is not None:
            urls[source.name] = str(exports_folder(config_dir, source.name))
    return urls


def _amo_leads(rendered: amo.Rendered) -> Iterator[dict[str, Any]]:
    """Leads as ``GET /api/v4/leads?with=contacts,loss_reason`` serves them."""
    for lead in rendered.leads:
        embedded = dict(lead["_embedded"])
        embedded["contacts"] = rendered.lead_contacts.get(lead["id"], [])
        embedded["loss_reason"] = rendered.lead_loss_reason.get(lead["id"], [])
        yield {**lead, "_embedded": embedded}


def land_amocrm(lander: Lander, world: World) -> None:
    account = amo.account_for(world, lander.connection_name, urls_for(world)[lander.connection_name])
    rendered = amo.render(world, lander.connection_name, account)
    lander("leads", _amo_leads(rendered))
    lander("leads", rendered.deleted_leads, deleted=True)
    for entity in ("pipelines", "loss_reasons", "events", "users", "notes", "contacts", "companies"):
        lander(entity, getattr(rendered, entity))
        setattr(rendered, entity, [])  # free as we go


def land_bitrix24(lander: Lander, world: World) -> None:
    portal = Portal(world, lander.connection_name)
    lander("deals", portal.deals, key="ID")
    del portal.__dict__["deals"]  # free as we go
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


def land_onec(lander: Lander, world: World) -> None:
    for entity, (set_name, key) in ONEC_SETS.items():
        lander(entity, onec.render(world, lander.connection_name, set_name), key=key)


def land_megaplan(lander: Lander, world: World) -> None:
    """As the extractor lands them: deals from the collection, a deal's status history and
    comments as ``<deal id>|<row id>``, custom field definitions by name."""
    site = MegaplanRenderer(world, lander.connection_name)
    deals = site.deals()
    lander("deals", ((d.id, site.deal(d, card=False)) for d in deals), key=None)
    lander("programs", ((p.id, site.program(p, card=False)) for p in site.pipelines), key=None)
    lander("program_states", (s for p in site.pipelines for s in site.states(p)))
    lander(
        "status_history", ((f"{d.id}|{r['id']}", r) for d in deals for r in site.status_history(d)), key=None
    )
    lander("comments", ((f"{d.id}|{c.id}", site.comment(d, c)) for d in deals for c in d.comments), key=None)
    lander("employees", site.employees())
    lander("contractor_companies", site.contractor_companies())
    lander("deal_fields", site.deal_field_definitions(), key="name")


def land_creatio(lander: Lander, world: World) -> None:
    """As served over OData: JSON, so amounts are numbers."""
    for entity, set_name in CREATIO_SETS.items():
        rows = creatio.render(world, lander.connection_name, set_name)
        lander(
            entity,
            ({k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()} for r in rows),
            key="Id",
        )


def land_rosbiznessoft(lander: Lander, world: World, installation: Installation = RBS_INSTALLATION) -> None:
    """As the extractor lands them: {structure, fields (as served), values (by meaning)}, the
    stage result read as open / won / lost, rows in the bin (visible 0) landed deleted."""
    site = RbsRenderer(world, lander.connection_name, installation)
    statuses = {installation.result_value(status): status for status in ("open", "won", "lost")}
    for meaning in RBS_TABLES:
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


LANDERS: dict[str, Callable[..., None]] = {  # system -> lander(lander, world, **options)
    "amocrm": land_amocrm,
    "bitrix24": land_bitrix24,
    "onec": land_onec,
    "megaplan": land_megaplan,
    "creatio": land_creatio,
    "rosbiznessoft": land_rosbiznessoft,
}
