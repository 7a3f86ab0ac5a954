"""When extraction runs: an hourly incremental refresh and a nightly full reconciliation
(which also finds records deleted at the source), each followed by everything downstream.

Both are off by default (the demo's ``dagster dev`` starts with them stopped); production
turns them on with ``DWH_SCHEDULES=on`` or in the UI. Their crons and timezone are set by
``DWH_REFRESH_CRON``, ``DWH_RECONCILE_CRON`` and ``DWH_SCHEDULE_TIMEZONE``.
"""

import os

import dagster as dg

from dagster_project.defs.extract.assets import ENTITIES


def mode_config(mode: str) -> dg.RunConfig:
    return dg.RunConfig(ops={f"extract_{system}": {"config": {"mode": mode}} for system in ENTITIES})


# deliveries (digest, reports) go out on their own schedules, not with every refresh
PIPELINE = dg.AssetSelection.all() - dg.AssetSelection.groups("delivery")

refresh_job = dg.define_asset_job(
    "warehouse_refresh",
    selection=PIPELINE,
    config=mode_config("incremental"),
    description="Incremental extraction of every connection, then every model and check downstream.",
)

reconcile_job = dg.define_asset_job(
    "warehouse_reconcile",
    selection=PIPELINE,
    config=mode_config("full"),
    description="Full extraction of every connection (marks records deleted at the source), then everything downstream.",
)


def _status() -> dg.DefaultScheduleStatus:
    on = os.environ.get("DWH_SCHEDULES", "off").lower() in ("on", "1", "true", "yes")
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED


def build_schedules() -> list[dg.ScheduleDefinition]:
    timezone = os.environ.get("DWH_SCHEDULE_TIMEZONE", "Europe/Moscow")
    return [
        dg.ScheduleDefinition(
            name="hourly_refresh", job=refresh_job, cron_schedule=os.environ.get("DWH_REFRESH_CRON", "5 * * * *"),
            execution_timezone=timezone, default_status=_status(),
            description="Every hour: incremental extraction and a rebuild of what depends on it.",
        ),
        dg.ScheduleDefinition(
            name="nightly_reconciliation", job=reconcile_job,
            cron_schedule=os.environ.get("DWH_RECONCILE_CRON", "30 2 * * *"),
            execution_timezone=timezone, default_status=_status(),
            description="Every night: full extraction that finds deletions, then a rebuild.",
        ),
    ]  # fmt: skip


defs = dg.Definitions(jobs=[refresh_job, reconcile_job], schedules=build_schedules())
