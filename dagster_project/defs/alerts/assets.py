"""The digest to the head of sales as an asset: run on alerts.yaml's cron (see sensors.py)
or on demand. Downstream of the quality marts, so a failing blocking check on them stops it."""

import dagster as dg

from dagster_project.lib.resources import CompanyConfigResource, WarehouseResource
from dwh.digest.deliver import KIND, deliver
from dwh.paths import data_dir


@dg.asset(
    key=["delivery", KIND],
    deps=[dg.AssetKey(["marts", "dq_lost_deal_issues"]), dg.AssetKey(["marts", "fct_deals"])],
    group_name="delivery",
    kinds={"email", "telegram"},
    description="The new lost-deal rule violations, grouped by manager with CRM links, to the head of sales "
    "by e-mail and Telegram; each (deal, issue) once per channel. A copy lands in .data/outbox/.",
)
def lost_deal_issues_digest(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, company_config: CompanyConfigResource
) -> dg.MaterializeResult:
    config = company_config.load()
    with warehouse.connect() as conn:
        conn.autocommit = True
        report = deliver(conn, config.alerts, data_dir() / "outbox", config.funnel.base_currency)
    for channel, error in report.failed.items():
        context.log.warning(f"digest to {channel} failed, will be retried next run: {error}")
    if report.uncertain:
        context.log.error(
            f"digests {report.uncertain} were interrupted between send and record; not sent again"
        )
    return dg.MaterializeResult(
        metadata={
            "sent": report.sent,
            "failed": report.failed,
            "nothing_new": report.nothing_new,
            "uncertain_digests": report.uncertain,
            "outbox_files": [str(p) for p in report.files],
        }
    )


defs = dg.Definitions(assets=[lost_deal_issues_digest])
