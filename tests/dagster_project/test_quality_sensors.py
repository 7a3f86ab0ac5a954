"""The data engineers' alerts reach them: a failed run and failed checks arrive over SMTP
(a real server on loopback) and Telegram (the Bot API stand-in), with the run's link, never
with a secret, and a copy lands in the outbox."""

import email.message
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from dagster_project.defs.quality.checks import build_mart_checks
from dagster_project.defs.quality.messages import Redactor
from dagster_project.defs.quality.sensors import failed_check_alerts, run_failure_alerts
from dagster_project.lib.resources import WarehouseResource
from expectations.marts import MART_SUITES
from sandbox.telegram import TelegramStandIn
from tests.expectations.support import build_good_marts, marts_as_built, quality_database_url, quality_db  # noqa: F401
from tests.mail import SmtpServer
from tests.support import free_port

BASE_URL = "http://dagster.example:3000"
WEBHOOK_CODE = "s3cr3tw3bh00kc0de"
WEBHOOK = f"http://127.0.0.1:9/rest/1/{WEBHOOK_CODE}/"
ENGINEERS = "data@example.ru"
CHAT = "-100500"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def bot() -> Iterator[TelegramStandIn]:
    standin = TelegramStandIn()
    standin.start()
    yield standin
    standin.stop()


def write_config(folder: Path, smtp_port: int, telegram_url: str) -> None:
    folder.mkdir(exist_ok=True)
    alerts = {
        "channels": {
            "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "security": "none",
                      "sender": "dwh@example.ru", "timeout_seconds": 5},
            "telegram": {"bot_token": "${TELEGRAM_BOT_TOKEN}", "api_base_url": telegram_url},
        },
        "recipients": {
            "head_of_sales": {"email": ["rop@example.ru"], "telegram_chat_ids": ["-1009999"],
                              "receives": ["lost_deal_issues_digest"]},
            "data_engineers": {"email": [ENGINEERS], "telegram_chat_ids": [CHAT],
                               "receives": ["run_failures", "failed_checks"]},
        },
        "dagster_base_url": BASE_URL,
    }  # fmt: skip
    (folder / "alerts.yaml").write_text(yaml.safe_dump(alerts))
    sources = {"sources": [{"name": "b24_wholesale", "type": "bitrix24", "webhook_url": "${B24_TEST_WEBHOOK}",
                            "portal_url": "http://127.0.0.1:9"}]}  # fmt: skip
    (folder / "sources.yaml").write_text(yaml.safe_dump(sources))


@pytest.fixture
def alerting(
    tmp_path: Path, smtp: SmtpServer, bot: TelegramStandIn, monkeypatch: pytest.MonkeyPatch
) -> tuple[SmtpServer, TelegramStandIn, Path]:
    """alerts.yaml pointing at the loopback SMTP server and the Telegram stand-in; the
    outbox in a folder of the test's own."""
    write_config(tmp_path / "config", smtp.port, bot.url)
    monkeypatch.setenv("DWH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", bot.token)
    monkeypatch.setenv("B24_TEST_WEBHOOK", WEBHOOK)
    monkeypatch.setenv("DWH_DATA_DIR", str(tmp_path / "data"))  # the outbox is <data dir>/outbox
    return smtp, bot, tmp_path / "data" / "outbox"


def plain(message: email.message.Message) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def html(message: email.message.Message) -> str:
    return message.get_body(("html",)).get_content()


@dg.op
def call_the_crm() -> None:
    raise RuntimeError(f"Bitrix24 unreachable at {WEBHOOK}crm.deal.list: connection refused")


@dg.job
def extract_everything() -> None:
    call_the_crm()


def failed_run(instance: dg.DagsterInstance):
    result = extract_everything.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result


def test_a_failed_run_reaches_the_engineers_with_its_link_and_no_secret(alerting, tmp_path: Path) -> None:
    smtp, bot, outbox = alerting
    with dg.DagsterInstance.ephemeral() as instance:
        result = failed_run(instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()  # fmt: skip
        run_failure_alerts(context)

    run_id = result.run_id
    link = f"{BASE_URL}/runs/{run_id}"
    assert len(smtp.inbox.messages) == 1
    (message,) = smtp.inbox.messages
    assert smtp.inbox.envelopes[0][1] == [ENGINEERS]
    assert message["Subject"] == f"[DWH] Run failed: extract_everything ({run_id[:8]})"
    for body in (plain(message), html(message)):
        assert link in body
        assert "call_the_crm" in body and "connection refused" in body
        assert WEBHOOK_CODE not in body
    assert "Bitrix24 unreachable at ***crm.deal.list" in plain(message)  # the whole webhook URL is secret
    assert [m.chat_id for m in bot.messages] == [CHAT]
    assert f'href="{link}"' in bot.messages[0].text and WEBHOOK_CODE not in bot.messages[0].text
    eml = outbox / f"run-failure-{run_id}.eml"
    assert eml.exists() and WEBHOOK_CODE not in eml.read_text(errors="replace")
    transcript = (outbox / "telegram-alerts.txt").read_text()
    assert f"run-failure-{run_id}" in transcript and f"to {CHAT}" in transcript


def test_without_channels_the_alert_only_goes_to_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "alerts.yaml").write_text(
        yaml.safe_dump({"recipients": {"data_engineers": {"receives": ["run_failures"]}}})
    )
    monkeypatch.setenv("DWH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DWH_DATA_DIR", str(tmp_path / "data"))
    with dg.DagsterInstance.ephemeral() as instance:
        result = failed_run(instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()  # fmt: skip
        run_failure_alerts(context)
        (tmp_path / "config" / "alerts.yaml").unlink()  # and with no alerts.yaml at all
        run_failure_alerts(context)
    eml = (tmp_path / "data" / "outbox" / f"run-failure-{result.run_id}.eml").read_text()
    assert "Run failed: extract_everything" in eml and "\nTo:\n" in eml.replace("\r\n", "\n")
    assert "to nobody" in (tmp_path / "data" / "outbox" / "telegram-alerts.txt").read_text()


def test_a_channel_that_is_down_does_not_stop_the_other(alerting, tmp_path: Path) -> None:
    smtp, bot, outbox = alerting
    write_config(tmp_path / "config", free_port(), bot.url)  # nothing listens there: SMTP is down
    with dg.DagsterInstance.ephemeral() as instance:
        result = failed_run(instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alerts", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
        ).for_run_failure()  # fmt: skip
        run_failure_alerts(context)
    assert smtp.inbox.messages == []
    assert [m.chat_id for m in bot.messages] == [CHAT]
    assert (outbox / f"run-failure-{result.run_id}.eml").exists()


def test_failed_checks_reach_the_engineers_once_errors_in_full_warnings_summed_up(
    alerting,
    quality_db: psycopg.Connection,  # noqa: F811
    tmp_path: Path,
) -> None:
    smtp, bot, outbox = alerting
    build_good_marts(quality_db)
    quality_db.execute("update marts.fct_deals set status = 'closed' where deal_key = 'amo_retail:2'")
    quality_db.commit()

    @dg.asset_check(asset=["marts", "rpt_loss_by_stage"], name="freshness_note")
    def freshness_note() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                   description="older than a day", metadata={"unexpected_count": 4})  # fmt: skip

    defs = dg.Definitions(
        assets=[marts_as_built], asset_checks=[*build_mart_checks(MART_SUITES), freshness_note],
        resources={"warehouse": WarehouseResource()},
    )  # fmt: skip
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        context = dg.build_sensor_context(instance=instance)
        skip = failed_check_alerts(context)
        cursor = context.cursor
        again = failed_check_alerts(dg.build_sensor_context(instance=instance, cursor=cursor))

    assert "1 with failed checks reported" in skip.skip_message
    assert "0 finished run(s) read" in again.skip_message, "a run's checks are reported once"
    (message,) = smtp.inbox.messages
    assert smtp.inbox.envelopes[0][1] == [ENGINEERS]
    assert message["Subject"] == (
        f"[DWH] Failed checks in __ASSET_JOB ({result.run_id[:8]}): 1 error, 1 warning"
    )
    text = plain(message)
    assert f"{BASE_URL}/runs/{result.run_id}" in text
    assert (
        "marts/fct_deals · gx_mart_invariants — 1 unexpected value (blocking: what is downstream was not built)"
        in text
    )
    assert "status is open, won or lost (1)" in text
    assert "e.g. broken=status is open, won or lost; " in text
    assert "status=closed" in text and "deal_key=amo_retail:2" in text
    assert "Warnings (1):\n- marts/rpt_loss_by_stage · freshness_note (4 unexpected)" in text
    assert f"{BASE_URL}/assets/marts/fct_deals?view=checks" in html(message)
    assert "deal_key=amo_retail:2" in html(message)
    (tg,) = bot.messages
    assert tg.chat_id == CHAT and "<b>Failed checks: 1 error, 1 warning</b>" in tg.text
    assert "deal_key=amo_retail:2" in tg.text
    assert (outbox / f"failed-checks-{result.run_id}.eml").exists()


def test_a_run_whose_checks_pass_sends_nothing(alerting, tmp_path: Path) -> None:
    smtp, bot, _ = alerting

    @dg.asset
    def fine() -> None:
        return None

    @dg.asset_check(asset=fine)
    def holds() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([fine, holds], instance=instance).success
        skip = failed_check_alerts(dg.build_sensor_context(instance=instance))
    assert "1 finished run(s) read, 0 with failed checks" in skip.skip_message
    assert smtp.inbox.messages == [] and bot.messages == []


def test_the_redactor_blanks_secrets() -> None:
    redact = Redactor(["hunter2-password"])
    text = redact(
        "login hunter2-password failed; GET http://bob:pa55@crm.local/api?token=abc&x=1 "
        "https://b24.local/rest/12/abcdef123/crm.deal.list https://api.telegram.org/bot123:AAH/sendMessage"
    )
    assert text == (
        "login *** failed; GET http://***@crm.local/api?token=***&x=1 "
        "https://b24.local/rest/12/***/crm.deal.list https://api.telegram.org/bot***/sendMessage"
    )
