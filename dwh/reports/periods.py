"""Weeks and months as the reports count them: ISO weeks (Monday to Sunday) and calendar
months, in the company's timezone (funnel.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ISO_WEEK = re.compile(r"^(\d{4})-?W(\d{1,2})(?:-?\d)?$")
ISO_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Week:
    monday: date

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def label(self) -> str:
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"

    def shift(self, weeks: int) -> Week:
        return Week(self.monday + timedelta(weeks=weeks))

    def start(self, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.monday, time(0), tzinfo=tz)

    def end(self, tz: ZoneInfo) -> datetime:
        """The first instant after the week."""
        return datetime.combine(self.monday + timedelta(days=7), time(0), tzinfo=tz)


def week_of(day: date) -> Week:
    return Week(day - timedelta(days=day.weekday()))


def last_complete_week(as_of: date) -> Week:
    """The report's week: the last Monday-to-Sunday week that ended before ``as_of``."""
    return week_of(as_of).shift(-1)


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_back(as_of: date, months: int) -> date:
    """The first day of the month ``months - 1`` months before ``as_of``'s month."""
    index = as_of.year * 12 + as_of.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


def as_date(value: object, tz: ZoneInfo | None = None) -> date | None:
    """A date from what a mart may hold for a day, week or month: a date, a timestamp (taken
    in ``tz``), ``YYYY-MM-DD``, ``YYYY-MM`` or an ISO week ``YYYY-Www`` (its Monday)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None and tz is not None:
            value = value.astimezone(tz)
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if match := ISO_WEEK.match(text):
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    if match := ISO_MONTH.match(text):
        return date(int(match.group(1)), int(match.group(2)), 1)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"expected a date, a YYYY-MM month or a YYYY-Www week, found {text!r}") from None


def local_naive(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """A timestamp as wall-clock time in ``tz`` (spreadsheets have no timezones)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(tz)
    return value.replace(tzinfo=None)
