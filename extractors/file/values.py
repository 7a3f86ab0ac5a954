"""Reading the cells of a deal export: Russian and ISO dates, amounts with decimal commas and
spaces between thousands, status words, currency spellings. Each reader returns the value or
raises ``CellError`` with a reason a person can act on."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

DATE_FORMATS = (
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d.%m.%y %H:%M:%S", "%d.%m.%y %H:%M", "%d.%m.%y",
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d",
)  # fmt: skip
DATE_HELP = "dd.mm.yyyy, dd.mm.yyyy hh:mm[:ss], yyyy-mm-dd[ hh:mm[:ss]] or ISO 8601"
# spaces people and spreadsheets put between thousands: plain, no-break, narrow no-break, thin
_THOUSANDS_SPACES = re.compile(r"[ \u00a0\u202f\u2009\u2007]")
_CURRENCY_MARKS = re.compile(
    r"^(?:₽|\$|€|руб\.?|р\.|rub|rur|usd|eur)\s*|\s*(?:₽|\$|€|руб\.?|р\.?|rub|rur|usd|eur)$", re.I
)
_PLAIN_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")

# words of a status column, compared in lower case with ё read as е and spaces collapsed
STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "won": (
        "успешно", "успешна", "успешный", "успех", "успешно реализовано", "успешно реализована",
        "успешно завершено", "успешно завершена", "сделка успешна", "выиграна", "выигран", "выиграно",
        "реализована", "победа", "won", "win", "closed won", "success", "successful",
    ),
    "lost": (
        "проиграна", "проигран", "проиграно", "закрыта и не реализована", "закрыто и не реализовано",
        "не реализована", "не реализовано", "неуспешно", "неуспешна", "провалена", "провал", "отказ",
        "отказано", "потеряна", "lost", "lose", "closed lost", "failed", "failure",
    ),
    "open": (
        "в работе", "открыта", "открыто", "активна", "активно", "новая", "новый", "в процессе",
        "open", "in progress", "active", "new",
    ),
}  # fmt: skip
CURRENCY_WORDS: dict[str, str] = {
    **dict.fromkeys(["rub", "rur", "руб", "руб.", "рубль", "рубли", "рублей", "р", "р.", "₽"], "RUB"),
    **dict.fromkeys(["usd", "$", "us$", "долл", "долл.", "доллар", "доллары", "долларов"], "USD"),
    **dict.fromkeys(["eur", "€", "евро"], "EUR"),
}


class CellError(ValueError):
    """A cell that cannot be read: the message says what it holds and what was expected."""


def word(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split()).strip(" .")


def parse_date(text: str, zone: ZoneInfo) -> datetime | None:
    """A naive local date-time (the export's zone), or None for an empty cell."""
    value = " ".join(text.split())
    if not value:
        return None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CellError(f"{text!r} is not a date ({DATE_HELP})") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone).replace(tzinfo=None)
    return moment


def parse_amount(text: str) -> Decimal | None:
    """``1 234 567,89``, ``1234567.89``, ``1,234,567.89``, ``-1 000 ₽`` -> a Decimal; None when empty."""
    value = _THOUSANDS_SPACES.sub("", text.strip())
    if not value:
        return None
    value = _CURRENCY_MARKS.sub("", value).replace("\u2212", "-")
    negative = value.startswith("(") and value.endswith(")")
    value = value.strip("()")
    if "," in value and "." in value:  # the later one is the decimal separator
        thousands, decimal = (".", ",") if value.rfind(",") > value.rfind(".") else (",", ".")
        value = value.replace(thousands, "").replace(decimal, ".")
    elif value.count(",") == 1:
        value = value.replace(",", ".")  # a decimal comma (1,5 is one and a half)
    elif value.count(",") > 1 and re.fullmatch(r"-?\d{1,3}(,\d{3})+", value):
        value = value.replace(",", "")
    elif value.count(".") > 1 and re.fullmatch(r"-?\d{1,3}(\.\d{3})+", value):
        value = value.replace(".", "")
    if not _PLAIN_NUMBER.fullmatch(value):
        raise CellError(f"{text!r} is not an amount (write it like 1 234 567,89 or 1234567.89)")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise CellError(f"{text!r} is not an amount") from None
    return -amount if negative else amount


def status_table(extra: dict[str, list[str]]) -> dict[str, str]:
    """word -> open/won/lost: the built-in words and the connection's own."""
    table = {word(w): status for status, words in STATUS_WORDS.items() for w in words}
    for status, words in extra.items():
        table.update({word(w): status for w in words})
    return table


def parse_status(text: str, table: dict[str, str]) -> str | None:
    key = word(text)
    if not key:
        return None
    if key not in table:
        examples = {s: [w for w, v in table.items() if v == s][:3] for s in ("open", "won", "lost")}
        known = "; ".join(f"{s}: {', '.join(ws)}, ..." for s, ws in examples.items())
        raise CellError(
            f"{text!r} is not a status word this connection knows ({known}): add it under status_values"
        )
    return table[key]


def parse_currency(text: str, default: str) -> str:
    key = word(text)
    if not key:
        return default
    if key in CURRENCY_WORDS:
        return CURRENCY_WORDS[key]
    if re.fullmatch(r"[a-z]{3}", key):
        return key.upper()
    raise CellError(f"{text!r} is not a currency (a three-letter code such as RUB, USD, EUR, or руб., $, €)")


def text_id(text: str) -> str:
    """A deal id as written: ``12345`` also when a spreadsheet made it ``12345.0``."""
    value = text.strip()
    return value[:-2] if re.fullmatch(r"\d+\.0", value) else value
