"""Deliveries on the crons of alerts.yaml. The sensor reads alerts.yaml when it ticks (never at
import), so a changed schedule needs no redeploy; weeks and days are in funnel.yaml's timezone.
Off by default in the demo's ``dagster dev`` (``DWH_SCHEDULES=on`` turns it on)."""

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from dagster_project.defs.delivery.schedules import weekly_delivery_job, weekly_run_config
from dagster_project.lib.resources import CompanyConfigResource
from dwh.cron import fired_between
from dwh.digest.deliver import KIND

digest_job = dg.define_asset_job(
    "lost_deal_issues_digest_job",
    selection=dg.AssetSelection.keys(["delivery", KIND]),
    description="Sends the lost-deal digest to the head of sales.",
)

# what each cron of alerts.yaml starts, by the schedule's key there: the job, and its run
# config for the day the cron fired
JOBS_BY_SCHEDULE: dict[str, tuple[Any, Callable[[str], dict]]] = {
    KIND: (digest_job, lambda day: {}),
    "weekly_funnel_report": (weekly_delivery_job, weekly_run_config),
}


def _status() -> dg.DefaultSensorStatus:
    on = os.environ.get("DWH_SCHEDULES", "off").lower() in ("on", "1", "true", "yes")
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


@dg.sensor(
    name="alerts_yaml_schedules",
    jobs=[job for job, _ in JOBS_BY_SCHEDULE.values()],
    minimum_interval_seconds=60,
    default_status=_status(),
    description="Starts the deliveries whose cron in alerts.yaml fired since the last tick.",
)
def alerts_yaml_schedules(context: dg.SensorEvaluationContext, company_config: CompanyConfigResource):
    config = company_config.load()
    now = datetime.now(UTC).astimezone(config.funnel.tzinfo)
    after = datetime.fromisoformat(context.cursor) if context.cursor else now - timedelta(minutes=1)
    for kind, cron in config.alerts.schedule.items():
        job, run_config = JOBS_BY_SCHEDULE[kind]
        fired = fired_between(cron, after, now)
        if fired:
            yield dg.RunRequest(run_key=f"{kind}:{fired.isoformat()}", job_name=job.name,
                                run_config=run_config(fired.date().isoformat()), tags={"cron": cron})  # fmt: skip
    context.update_cursor(now.isoformat())


defs = dg.Definitions(jobs=[digest_job], sensors=[alerts_yaml_schedules])
