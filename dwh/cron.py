"""Five-field cron expressions (minute hour day-of-month month day-of-week), for the
schedules a company writes in alerts.yaml. Read at run time, so they can change without a
redeploy."""

from __future__ import annotations

from datetime import datetime, timedelta

FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


class CronError(ValueError):
    pass


def _values(spec: str, name: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for part in spec.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(body)
            if step_text:
                end = high
        if not (low <= start <= high and low <= end <= high and start <= end and step > 0):
            raise CronError(f"{name}: {part!r} is outside {low}-{high}")
        out.update(range(start, end + 1, step))
    return out


def parse(expression: str) -> list[set[int]]:
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"a cron expression has five fields, {expression!r} has {len(parts)}")
    try:
        sets = [_values(p, name, lo, hi) for p, (name, lo, hi) in zip(parts, FIELDS, strict=True)]
    except ValueError as exc:
        raise CronError(f"{expression!r}: {exc}") from None
    if 7 in sets[4]:
        sets[4].add(0)  # Sunday is 0 or 7
    return sets


def matches(expression: str, moment: datetime) -> bool:
    minute, hour, dom, month, dow = parse(expression)
    parts = expression.split()
    weekday = (moment.weekday() + 1) % 7  # cron: Sunday = 0
    day_ok = (moment.day in dom) or (weekday in dow) if parts[2] != "*" and parts[4] != "*" else (
        moment.day in dom and weekday in dow)  # fmt: skip
    return moment.minute in minute and moment.hour in hour and moment.month in month and day_ok


def fired_between(expression: str, after: datetime, until: datetime) -> datetime | None:
    """The latest minute in (after, until] that the expression fires at, or None."""
    moment = until.replace(second=0, microsecond=0)
    while moment > after:
        if matches(expression, moment):
            return moment
        moment -= timedelta(minutes=1)
    return None
