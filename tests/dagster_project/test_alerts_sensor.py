"""The sensor reads alerts.yaml's crons when it ticks and asks for the digest when one fired."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from dagster_project.defs.alerts.sensors import alerts_yaml_schedules
from dagster_project.lib.resources import CompanyConfigResource
from tests.support import PROJECT_ROOT

NEVER = "0 9 31 2 *"  # 31 February


def config_with_schedule(tmp_path: Path, digest: str, weekly: str = NEVER) -> Path:
    directory = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", directory)
    alerts = directory / "alerts.yaml"
    text = alerts.read_text(encoding="utf-8")
    text = text.replace("lost_deal_issues_digest: 0 9 * * 1-5", f'lost_deal_issues_digest: "{digest}"')
    alerts.write_text(text.replace("weekly_funnel_report: 0 9 * * 1", f'weekly_funnel_report: "{weekly}"'),
                      encoding="utf-8")  # fmt: skip
    return directory


def tick(directory: Path, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, resources={"company_config": CompanyConfigResource(
        config_dir=str(directory))})  # fmt: skip
    return list(alerts_yaml_schedules(context)), context.cursor


def test_a_cron_that_fired_since_the_last_tick_requests_the_digest(tmp_path: Path, demo_env) -> None:
    directory = config_with_schedule(tmp_path, "* * * * *")
    ten_minutes_ago = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    requests, cursor = tick(directory, ten_minutes_ago)
    assert [r.job_name for r in requests] == ["lost_deal_issues_digest_job"]
    assert requests[0].run_key.startswith("lost_deal_issues_digest:")
    assert cursor and cursor > ten_minutes_ago
    again, _ = tick(directory, cursor)
    assert again == [] or again[0].run_key != requests[0].run_key


def test_a_cron_that_did_not_fire_requests_nothing(tmp_path: Path, demo_env) -> None:
    directory = config_with_schedule(tmp_path, NEVER)
    requests, _ = tick(directory, (datetime.now(UTC) - timedelta(days=2)).isoformat())
    assert requests == []


def test_the_weekly_cron_sends_the_weekly_report(tmp_path: Path, demo_env) -> None:
    directory = config_with_schedule(tmp_path, NEVER, weekly="* * * * *")
    requests, _ = tick(directory, (datetime.now(UTC) - timedelta(minutes=5)).isoformat())
    [request] = requests
    assert request.job_name == "weekly_delivery"
    config = request.run_config["ops"]["weekly_funnel_report"]["config"]
    assert config["send"] is True and config["as_of"] == request.run_key.split(":", 1)[1][:10]
