from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dwh.cron import CronError, fired_between, matches

MSK = ZoneInfo("Europe/Moscow")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MSK)


def test_weekday_mornings() -> None:
    assert matches("0 9 * * 1-5", at("2026-11-23T09:00"))  # a Monday
    assert not matches("0 9 * * 1-5", at("2026-11-22T09:00"))  # a Sunday
    assert not matches("0 9 * * 1-5", at("2026-11-23T09:01"))


def test_steps_lists_and_sunday_as_seven() -> None:
    assert matches("*/15 8,18 * * 7", at("2026-11-22T18:45"))
    assert not matches("*/15 8,18 * * 7", at("2026-11-22T18:50"))


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    assert matches("0 9 1 * 1", at("2026-12-01T09:00"))  # the 1st, a Tuesday
    assert matches("0 9 1 * 1", at("2026-11-23T09:00"))  # a Monday


def test_fired_between_finds_the_latest_minute() -> None:
    assert fired_between("0 9 * * 1", at("2026-11-23T08:00"), at("2026-11-23T10:30")) == at(
        "2026-11-23T09:00"
    )
    assert fired_between("0 9 * * 1", at("2026-11-23T09:00"), at("2026-11-23T10:30")) is None


@pytest.mark.parametrize("bad", ["0 9 * *", "61 * * * *", "0 9 * * mon", "0 25 * * *"])
def test_bad_expressions_are_named(bad: str) -> None:
    with pytest.raises(CronError):
        matches(bad, at("2026-11-23T09:00"))
