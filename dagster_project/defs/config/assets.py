"""funnel.yaml and sources.yaml as ``config.*`` tables, which dbt reads as sources."""

import dagster as dg

from dagster_project.lib.resources import CompanyConfigResource, WarehouseResource
from dwh.config.tables import TABLES, write_config_tables

DESCRIPTIONS = {
    "settings": "Company-wide settings of funnel.yaml: timezone, base currency, rules.",
    "stages": "The canonical funnel: stages in order with target conversion and time limit.",
    "loss_reasons": "The company-wide loss reasons, with reactivation delays.",
    "sources": "One row per connection of sources.yaml, with its mapping options.",
    "stage_mappings": "Per connection: source stage to canonical stage.",
    "reason_mappings": "Per connection: source loss reason to canonical reason.",
    "people": "One person across systems, when e-mails do not tie them.",
}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["config", table], description=DESCRIPTIONS[table], group_name="config", kinds={"postgres"}
        )
        for table in TABLES
    ],
    name="config_tables",
    description="Validates config/*.yaml and replaces the config.* tables in one transaction.",
)
def config_tables(warehouse: WarehouseResource, company_config: CompanyConfigResource):
    config = company_config.load()
    with warehouse.connect() as conn:
        counts = write_config_tables(conn, config)
    for table, count in counts.items():
        yield dg.MaterializeResult(asset_key=["config", table], metadata={"rows": count})


defs = dg.Definitions(assets=[config_tables])
