"""The Excel report and the weekly funnel report as assets downstream of the marts.

``loss_report_xlsx`` writes ``loss_report_<date>.xlsx`` into ``DWH_EXPORT_DIR`` (default
``<data dir>/exports``). ``weekly_funnel_report`` writes the weekly e-mail (and the Telegram
text) to ``<data dir>/outbox/`` on every run, and sends it only when run with ``send: true``
(the weekly schedule does): then each recipient channel of alerts.yaml gets each week's
report once.
"""

from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from dagster_project.lib.resources import CompanyConfigResource, WarehouseResource
from dwh.config import load_alerts, load_funnel
from dwh.config.models import FunnelConfig
from dwh.reports import deliver, run
from dwh.reports.settings import ReportSettings
from dwh.reports.xlsx import report_path

MARTS = ("fct_deals", "fct_lost_deals", "rpt_loss_by_stage", "rpt_loss_by_manager", "rpt_loss_by_reason",
         "rpt_funnel_conversion", "rpt_coaching_pairs", "dq_lost_deal_issues", "rpt_reactivation_due")  # fmt: skip


class ReportDate(dg.Config):
    as_of: str | None = Field(
        default=None,
        description="The report's date, YYYY-MM-DD; default: DWH_REPORT_AS_OF, else today in funnel.yaml's timezone",
    )

    def day(self, funnel: FunnelConfig, settings: ReportSettings) -> date:
        if not self.as_of:
            return settings.as_of or run.today(funnel)
        try:
            return date.fromisoformat(self.as_of)
        except ValueError:
            raise dg.Failure(f"as_of: expected a date as YYYY-MM-DD, found {self.as_of!r}") from None


class WeeklyReportConfig(ReportDate):
    send: bool = Field(
        default=False, description="Send to the recipients of alerts.yaml (the schedule sets it)"
    )
    force: bool = Field(default=False, description="Send again even if this week's report went out already")


def _config_dir(company_config: CompanyConfigResource) -> Path | None:
    return Path(company_config.config_dir) if company_config.config_dir else None


@dg.asset(
    name="loss_report_xlsx",
    group_name="delivery",
    deps=[dg.AssetKey(["marts", name]) for name in MARTS],
    kinds={"excel"},
    description="loss_report_<date>.xlsx: loss by stage, manager and reason, conversion against targets, lost "
    "deals with CRM links, open issues and the reactivation list, with native charts (DWH_EXPORT_DIR).",
)
def loss_report_xlsx(
    context: dg.AssetExecutionContext,
    config: ReportDate,
    warehouse: WarehouseResource,
    company_config: CompanyConfigResource,
) -> dg.MaterializeResult:
    funnel = load_funnel(_config_dir(company_config))
    settings = ReportSettings.from_env()
    as_of = config.day(funnel, settings)
    with warehouse.connect() as conn:
        path, data = run.excel_report(conn, funnel, settings, as_of)
    context.log.info(f"Excel report written: {path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "as_of": as_of.isoformat(),
            "language": settings.language,
            "lost_deals": len(data.lost_deals.rows),
            "open_issues": len(data.dq_issues.rows),
            "reactivation_due": len(data.reactivation.rows),
        }
    )


@dg.asset(
    name="weekly_funnel_report",
    group_name="delivery",
    deps=[loss_report_xlsx],
    kinds={"email"},
    description="The weekly funnel report to the head of sales: conversion per manager and stage against "
    "targets, coaching pairs, the week's losses against the previous weeks, charts and the xlsx attached. "
    "Written to the outbox on every run; sent (once per week and channel) when run with send: true.",
)
def weekly_funnel_report(
    context: dg.AssetExecutionContext,
    config: WeeklyReportConfig,
    warehouse: WarehouseResource,
    company_config: CompanyConfigResource,
) -> dg.MaterializeResult:
    funnel = load_funnel(_config_dir(company_config))
    alerts = load_alerts(_config_dir(company_config))
    settings = ReportSettings.from_env()
    as_of = config.day(funnel, settings)
    xlsx = report_path(settings.export_dir, as_of)
    with warehouse.connect() as conn:
        conn.autocommit = True
        if not xlsx.exists():
            xlsx, _ = run.excel_report(conn, funnel, settings, as_of)
        report = run.weekly_report(conn, funnel, settings, as_of, xlsx)
        result = deliver.deliver(
            conn, alerts, report, settings.outbox_dir, send=config.send, force=config.force
        )
    for delivery_id in result.uncertain:
        context.log.warning(
            f"weekly report delivery {delivery_id} was interrupted: it may or may not have arrived"
        )
    if result.failed:
        raise dg.Failure(
            "the weekly funnel report could not be sent to "
            + "; ".join(f"{channel}: {error}" for channel, error in result.failed.items())
            + f" (the copy is in {result.files[0]}; the next run with send: true tries those channels again)",
            metadata={"sent": ", ".join(result.sent) or "none"},
        )
    return dg.MaterializeResult(
        metadata={
            "week": report.week.label,
            "eml": dg.MetadataValue.path(str(result.files[0])),
            "attachment": dg.MetadataValue.path(str(xlsx)),
            "sent": ", ".join(result.sent) or ("none" if config.send else "not asked to send (send: false)"),
            "already_sent": ", ".join(result.already_sent) or "none",
            "recipients": ", ".join(result.recipients) or "none",
        }
    )


defs = dg.Definitions(assets=[loss_report_xlsx, weekly_funnel_report])
