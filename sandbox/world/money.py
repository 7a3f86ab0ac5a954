"""Currencies: the world's daily USD and EUR rates in roubles and conversion to the base
currency. A rate applies to a calendar day in Europe/Moscow, as 1C's register keeps it."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

MOSCOW = ZoneInfo("Europe/Moscow")
BASE_CURRENCY = "RUB"
FOREIGN = ("USD", "EUR")
_START = {"USD": 92.40, "EUR": 99.85}
_ANCHOR = {"USD": 90.0, "EUR": 98.0}
_CENT = Decimal("0.01")
_RATE_STEP = Decimal("0.0001")


def moscow_date(moment: datetime) -> date:
    return moment.astimezone(MOSCOW).date()


def build_rates(rng: random.Random, first: date, last: date) -> dict[tuple[str, date], Decimal]:
    """Daily rates for every day from ``first`` to ``last`` inclusive (a mean-reverting walk)."""
    rates: dict[tuple[str, date], Decimal] = {}
    _walk(rng, rates, dict(_START), first, last)
    return rates


def extend_rates(rng: random.Random, rates: dict[tuple[str, date], Decimal], last: date) -> None:
    """Continue the walk from the last known day up to ``last``."""
    known = max(d for (_, d) in rates)
    if known >= last:
        return
    level = {c: float(rates[(c, known)]) for c in FOREIGN}
    _walk(rng, rates, level, known + timedelta(days=1), last)


def _walk(
    rng: random.Random,
    rates: dict[tuple[str, date], Decimal],
    level: dict[str, float],
    first: date,
    last: date,
) -> None:
    day = first
    while day <= last:
        for currency in FOREIGN:
            value = level[currency]
            value *= math.exp(rng.gauss(0, 0.006) + 0.02 * math.log(_ANCHOR[currency] / value))
            level[currency] = value
            rates[(currency, day)] = Decimal(f"{value:.4f}").quantize(_RATE_STEP)
        day += timedelta(days=1)


def rate_on(rates: dict[tuple[str, date], Decimal], currency: str, moment: datetime) -> Decimal:
    if currency == BASE_CURRENCY:
        return Decimal(1)
    day = moscow_date(moment)
    try:
        return rates[(currency, day)]
    except KeyError:
        raise KeyError(
            f"World.rates has no {currency} rate for {day} (Europe/Moscow day of {moment})"
        ) from None


def to_base(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(_CENT, rounding=ROUND_HALF_UP)
