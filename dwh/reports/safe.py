"""What may leave the warehouse in a report: free text without phone numbers and e-mail
addresses, and links that are plain web links.

Managers' comments are free text and sometimes quote a client's phone or e-mail; those are
masked before a comment reaches a spreadsheet or a message.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
PHONE_CANDIDATE = re.compile(r"(?<![\w])\+?\d[\d\s\-().]{7,}\d(?![\w])")
PHONE_DIGITS = (10, 15)  # a phone number with its country or trunk code
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

EXCEL_TEXT_LIMIT = 32767
EXCEL_URL_LIMIT = 2079


def _phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    low, high = PHONE_DIGITS
    return "[тел.]" if low <= digits <= high else match.group(0)


def redact(text: str | None) -> str | None:
    """``text`` with e-mail addresses and phone numbers masked and control characters removed."""
    if text is None:
        return None
    text = CONTROL.sub(" ", str(text))
    text = EMAIL.sub("[e-mail]", text)
    return PHONE_CANDIDATE.sub(_phone, text)


def cell_text(text: str | None) -> str | None:
    """Redacted text that fits a spreadsheet cell."""
    text = redact(text)
    if text is not None and len(text) > EXCEL_TEXT_LIMIT:
        text = text[: EXCEL_TEXT_LIMIT - 1] + "…"
    return text


def web_link(url: str | None) -> str | None:
    """``url`` if it is an http(s) link a spreadsheet or mail client may open, else None."""
    if not url:
        return None
    url = str(url).strip()
    if CONTROL.search(url) or any(ch.isspace() for ch in url):
        return None
    if not url.lower().startswith(("http://", "https://")) or len(url) > EXCEL_URL_LIMIT:
        return None
    return url
