"""The job that sends the Excel report and the weekly funnel report. It runs on the cron of
alerts.yaml's ``schedule.weekly_funnel_report`` through the sensor in
``dagster_project/defs/alerts/sensors.py`` (which reads alerts.yaml at tick time), or on demand."""

import dagster as dg

from dagster_project.defs.delivery.assets import loss_report_xlsx, weekly_funnel_report

weekly_delivery_job = dg.define_asset_job(
    "weekly_delivery",
    selection=dg.AssetSelection.assets(loss_report_xlsx, weekly_funnel_report),
    description="The Excel report and the weekly funnel report, from the marts as they are.",
)


def weekly_run_config(as_of: str) -> dict:
    """Send this week's report (once per channel) as of the day the cron fired."""
    return {"ops": {
        "loss_report_xlsx": {"config": {"as_of": as_of}},
        "weekly_funnel_report": {"config": {"as_of": as_of, "send": True}},
    }}  # fmt: skip


defs = dg.Definitions(jobs=[weekly_delivery_job])
