"""One multi-asset per source system, landing every raw table of that system for each of its
enabled connections in turn. Keys are the raw tables (``[raw_amocrm, leads]``), which is what
dbt's sources resolve to.

A CRM account's rate limit belongs to the account: each system's asset runs in the pool
``extract_<system>`` (limit 1 in the instance's dagster.yaml), and the extractor takes a
per-connection advisory lock in the warehouse, so two runs never extract one account at once.
"""

import dagster as dg

from dagster_project.lib.resources import CompanyConfigResource, WarehouseResource
from extractors.common.run import Mode
from extractors.common.runner import run_connection

ENTITIES: dict[str, dict[str, str]] = {
    "amocrm": {
        "leads": "amoCRM leads (deals) with loss reason and contacts; deleted leads marked deleted.",
        "pipelines": "amoCRM pipelines with their statuses (142 won, 143 lost in each).",
        "loss_reasons": "amoCRM's own list of loss reasons.",
        "events": "amoCRM lead_status_changed events: the stage history.",
        "users": "amoCRM users: the managers.",
        "notes": "amoCRM common notes on leads: the managers' comments.",
        "contacts": "amoCRM contacts.",
        "companies": "amoCRM companies with their INN.",
    },
    "bitrix24": {
        "deals": "Bitrix24 deals with every field, UF_* included.",
        "stage_history": "Bitrix24 deal stage history (crm.stagehistory.list).",
        "categories": "Bitrix24 deal funnels (categories).",
        "statuses": "Bitrix24 deal stages of every funnel, with their semantics.",
        "deal_fields": "Bitrix24 deal field metadata, to resolve enumeration values.",
        "users": "Bitrix24 users: the managers.",
        "timeline_comments": "Bitrix24 timeline comments of lost deals.",
        "companies": "Bitrix24 companies.",
        "contacts": "Bitrix24 contacts.",
        "requisites": "Bitrix24 requisites: where the INN lives.",
    },
    "onec": {
        "deals": "1C deals (Catalog_СделкиСКлиентами).",
        "deal_kinds": "1C deal kinds (Catalog_ВидыСделокСКлиентами).",
        "stages": "1C process states (Catalog_СостоянияПроцессов).",
        "deal_stage_stats": "1C deal stage statistics register: one row per (deal, stage).",
        "loss_reasons": "1C loss reasons (Catalog_ПричиныПроигрышаСделок).",
        "partners": "1C partners: the customers.",
        "counterparties": "1C counterparties: legal entities with their INN.",
        "users": "1C users: the managers.",
        "currencies": "1C currencies.",
        "exchange_rates": "1C exchange rates register.",
    },
    "creatio": {
        "opportunities": "Creatio opportunities (deals), custom Usr* columns included; deleted ones marked deleted.",
        "stage_history": "Creatio OpportunityInStage: the stage rows written on every stage change.",
        "stages": "Creatio opportunity stages with their End / Successful flags (won, lost).",
        "close_reasons": "Creatio opportunity close reasons (for wins and losses).",
        "users": "Creatio system users (SysAdminUnit, type 4), each pointing at its contact.",
        "contacts": "Creatio contacts: the owners (employees' contacts) and the customers' people.",
        "accounts": "Creatio accounts: the customers, with their INN.",
    },
    "megaplan": {
        "deals": "Megaplan deals (the collection's fields, custom fields included).",
        "programs": "Megaplan deal programs (pipelines) with their states in order.",
        "program_states": "Megaplan program states, typed active / positive (won) / negative (lost).",
        "status_history": "Megaplan deal status history: the stage changes (id <deal id>|<row id>).",
        "comments": "Megaplan deal comments (id <deal id>|<comment id>).",
        "employees": "Megaplan employees: the managers.",
        "contractor_companies": "Megaplan contractor companies with their payers (where the INN lives).",
        "deal_fields": "Megaplan custom deal fields, to find the loss-reason field by name or title.",
    },
    "rosbiznessoft": {
        "pipelines": "RosBiznesSoft deal types (the pipelines).",
        "stages": "RosBiznesSoft deal stages, with the result enumeration read as open / won / lost.",
        "loss_reasons": "RosBiznesSoft loss reasons.",
        "users": "RosBiznesSoft users: the managers.",
        "companies": "RosBiznesSoft companies (контрагенты): the customers.",
        "company_details": "RosBiznesSoft legal entities of the companies, where the INN lives.",
        "deals": "RosBiznesSoft deals; those moved to the bin (visible 0) marked deleted.",
        "stage_history": "RosBiznesSoft deal stage history: a row per stage change.",
        "comments": "RosBiznesSoft comments on deals.",
    },
    "file": {
        "deals": "Deals read from CSV/XLSX exports: the latest export's row of each deal.",
        "stage_history": "Stage changes read from the stage history exports, where a connection has them.",
        "stage_snapshots": "A deal's stage each time a load saw it new or moved: transitions without a history file.",
        "files": "The export files loaded (checksum, rows, rejects), each once.",
    },
}

SYSTEM_TITLES = {
    "amocrm": "amoCRM",
    "bitrix24": "Bitrix24",
    "onec": "1C",
    "creatio": "Creatio",
    "megaplan": "Megaplan",
    "rosbiznessoft": "RosBiznesSoft",
    "file": "export file",
}


class ExtractConfig(dg.Config):
    mode: str = "incremental"  # or "full": re-read everything and mark what disappeared as deleted


def build_extract_asset(system: str) -> dg.AssetsDefinition:
    entities = ENTITIES[system]
    first = dg.AssetKey([f"raw_{system}", next(iter(entities))])

    @dg.multi_asset(
        name=f"extract_{system}",
        specs=[
            dg.AssetSpec(
                [f"raw_{system}", entity],
                description=text,
                group_name=f"raw_{system}",
                kinds={"python", "postgres"},
            )
            for entity, text in entities.items()
        ],  # fmt: skip
        check_specs=[
            dg.AssetCheckSpec(
                "connections_extracted",
                asset=first,
                description=f"Every enabled {SYSTEM_TITLES[system]} connection was extracted.",
            )
        ],  # fmt: skip
        pool=f"extract_{system}",
        description=f"Extracts every enabled {SYSTEM_TITLES[system]} connection of sources.yaml into raw_{system}.",
    )
    def extract(
        context: dg.AssetExecutionContext,
        config: ExtractConfig,
        warehouse: WarehouseResource,
        company_config: CompanyConfigResource,
    ):
        if config.mode not in ("incremental", "full"):
            raise dg.Failure(f"mode must be incremental or full, not {config.mode!r}")
        mode: Mode = config.mode  # type: ignore[assignment]
        sources = company_config.load().sources.by_type(system)
        reports = []
        with warehouse.connect() as conn:
            conn.autocommit = True
            for source in sources:
                report = run_connection(source, conn, mode)
                reports.append(report)
                if report.error:
                    context.log.error(report.error)
                else:
                    context.log.info(
                        f"{source.name}: {report.stats.requests} requests, "
                        f"{sum(report.records.values())} records written"
                    )
        by_connection = {r.connection: r.as_metadata() for r in reports}
        for entity in entities:
            written = {r.connection: r.records.get(entity, 0) for r in reports}
            yield dg.MaterializeResult(
                asset_key=[f"raw_{system}", entity],
                metadata={
                    "records_written": sum(written.values()),
                    "by_connection": written,
                    "runs": by_connection,
                },
            )
        failed = [r for r in reports if r.error]
        yield dg.AssetCheckResult(
            check_name="connections_extracted",
            asset_key=first,
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(r.error for r in failed)
            if failed
            else f"{len(reports)} connection(s) extracted",
            metadata={"runs": by_connection},
        )

    return extract


extract_assets = [build_extract_asset(system) for system in ENTITIES]

defs = dg.Definitions(assets=extract_assets)
