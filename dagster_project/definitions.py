"""The Definitions of every domain, merged. Nothing else lives here."""

import dagster as dg

from dagster_project.defs.alerts import assets as alert_assets
from dagster_project.defs.alerts import sensors as alert_sensors
from dagster_project.defs.config import assets as config_assets
from dagster_project.defs.dbt import assets as dbt_assets
from dagster_project.defs.delivery import assets as delivery_assets
from dagster_project.defs.delivery import schedules as delivery_schedules
from dagster_project.defs.extract import assets as extract_assets
from dagster_project.defs.extract import schedules as extract_schedules
from dagster_project.defs.quality import checks as quality_checks
from dagster_project.defs.quality import sensors as quality_sensors
from dagster_project.lib.resources import CompanyConfigResource, WarehouseResource

defs = dg.Definitions.merge(
    config_assets.defs,
    alert_assets.defs,
    alert_sensors.defs,
    extract_assets.defs,
    extract_schedules.defs,
    dbt_assets.defs,
    delivery_assets.defs,
    delivery_schedules.defs,
    quality_checks.defs,
    quality_sensors.defs,
    dg.Definitions(resources={"warehouse": WarehouseResource(), "company_config": CompanyConfigResource()}),
)
