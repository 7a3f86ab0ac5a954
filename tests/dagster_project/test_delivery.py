"""The delivery assets in Dagster: the Excel report and the weekly funnel report
materialized against hand-made marts, sent only when asked, and the weekly schedule."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import openpyxl
import psycopg
import pytest

from dagster_project.defs.delivery import assets as delivery_assets
from dagster_project.defs.delivery import schedules as delivery_schedules
from dagster_project.lib.resources import CompanyConfigResource, WarehouseResource
from dwh import server
from dwh.reports import deliver
from dwh.warehouse import Target
from sandbox.telegram import TelegramStandIn
from tests.mail import SmtpServer
from tests.reports.marts import report_warehouse, write_config
from tests.support import free_port

MARTS = {"fct_lost_deals", "rpt_loss_by_stage", "rpt_loss_by_manager", "rpt_loss_by_reason", "rpt_funnel_conversion",
         "rpt_coaching_pairs", "dq_lost_deal_issues", "rpt_reactivation_due"}  # fmt: skip


@pytest.fixture
def report_env(warehouse: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The delivery assets pointed at the hand-made marts as an external warehouse would be."""
    target = report_warehouse(warehouse)
    password = server.embedded_server().admin_password()
    url = (
        f"postgresql://{server.ADMIN_USER}:{quote(password, safe='')}@127.0.0.1:{target.port}/{target.dbname}"
    )
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        conn.execute(deliver.DDL)
        conn.execute("delete from ops.report_deliveries")
    monkeypatch.setenv("DWH_DATABASE_URL", url)
    monkeypatch.setenv("DWH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DWH_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("DWH_REPORT_LANGUAGE", "en")
    return tmp_path


def materialize(config_dir: Path, send: bool, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [delivery_assets.loss_report_xlsx, delivery_assets.weekly_funnel_report],
        resources={"warehouse": WarehouseResource(), "company_config": CompanyConfigResource(config_dir=str(config_dir))},
        run_config={"ops": {
            "loss_report_xlsx": {"config": {"as_of": "2025-03-12"}},
            "weekly_funnel_report": {"config": {"as_of": "2025-03-12", "send": send}},
        }},
        raise_on_error=raise_on_error,
    )  # fmt: skip


def test_the_assets_sit_in_the_delivery_group_downstream_of_the_marts() -> None:
    resources = {"warehouse": WarehouseResource(), "company_config": CompanyConfigResource()}
    defs = dg.Definitions.merge(
        delivery_assets.defs, delivery_schedules.defs, dg.Definitions(resources=resources)
    )
    graph = defs.resolve_asset_graph()
    xlsx = graph.get(dg.AssetKey("loss_report_xlsx"))
    weekly = graph.get(dg.AssetKey("weekly_funnel_report"))
    assert xlsx.group_name == weekly.group_name == "delivery"
    assert {k.path[1] for k in xlsx.parent_keys if k.path[0] == "marts"} >= MARTS
    assert dg.AssetKey("loss_report_xlsx") in weekly.parent_keys
    assert xlsx.description and weekly.description


def test_materialized_on_demand_it_writes_the_files_and_sends_nothing(
    report_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:unused")
    config = write_config(
        report_env / "config", smtp_port=free_port()
    )  # nothing listens: nothing may be sent
    result = materialize(config, send=False)
    assert result.success
    xlsx = report_env / "exports" / "loss_report_2025-03-12.xlsx"
    assert openpyxl.load_workbook(xlsx).sheetnames[0] == "Summary"
    eml = report_env / "data" / "outbox" / "weekly-funnel-2025-W10.eml"
    assert eml.exists() and b"loss_report_2025-03-12.xlsx" in eml.read_bytes()
    [weekly] = [m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey("weekly_funnel_report")]  # fmt: skip
    assert weekly.materialization.metadata["sent"].value == "not asked to send (send: false)"


def test_with_send_it_reaches_the_recipients_once_and_fails_loudly_when_it_cannot(
    report_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    telegram = TelegramStandIn()
    telegram.start()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", telegram.token)
    try:
        with SmtpServer("none") as smtp:
            config = write_config(report_env / "config", smtp.port, telegram.url)
            assert materialize(config, send=True).success
            assert materialize(config, send=True).success  # the same week again: not sent twice
        [message] = smtp.inbox.messages
        assert message["Subject"] == "Sales funnel per manager: week 2025-03-03 to 2025-03-09"
        assert len(telegram.messages) == 1
        config = write_config(report_env / "config", free_port(), telegram.url)
        failed = materialize(config, send=True, raise_on_error=False)
        assert failed.success, "every channel had this week's report already"
    finally:
        telegram.stop()
    with psycopg.connect(os.environ["DWH_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("delete from ops.report_deliveries")
    failed = materialize(config, send=True, raise_on_error=False)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "could not be sent to email: ConnectionRefusedError" in str(failure.event_specific_data.error)
