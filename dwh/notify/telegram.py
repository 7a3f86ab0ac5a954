"""Telegram Bot API messages: HTML-escaped, split under Telegram's 4,096-character limit at
line boundaries, sent with ``sendMessage``; the API's base URL is configurable so a local Bot
API server works."""

from __future__ import annotations

import html
import time

import httpx

from dwh.config.models import TelegramChannel

LIMIT = 4096


def escape(text: str) -> str:
    """Text for ``parse_mode=HTML``: only <, > and & are special there."""
    return html.escape(text, quote=False)


def split(text: str, limit: int = LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at line ends (a line longer than the limit
    is cut at the limit, never inside an HTML entity)."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = limit
            amp = line.rfind("&", 0, cut)
            if amp != -1 and ";" not in line[amp:cut]:
                cut = amp
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        pieces.append(current)
    return pieces


class TelegramError(RuntimeError):
    pass


def send(channel: TelegramChannel, chat_id: str, html_text: str, timeout: float = 30.0) -> list[int]:
    """Send one message per piece; return Telegram's message ids. Raises ``TelegramError``
    with the API's description (never the token) when Telegram refuses."""
    url = f"{channel.api_base_url}/bot{channel.bot_token.get()}/sendMessage"
    ids = []
    with httpx.Client(timeout=timeout) as client:
        for piece in split(html_text):
            for attempt in range(5):
                try:
                    r = client.post(url, json={"chat_id": chat_id, "text": piece, "parse_mode": "HTML",
                                               "disable_web_page_preview": True})  # fmt: skip
                except httpx.HTTPError as exc:
                    raise TelegramError(
                        f"Telegram unreachable at {channel.api_base_url}: {type(exc).__name__}"
                    ) from None
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                if r.status_code == 429 and attempt < 4:
                    time.sleep(min(30, body.get("parameters", {}).get("retry_after", 1)))
                    continue
                if not body.get("ok"):
                    raise TelegramError(f"Telegram refused the message to chat {chat_id}: "
                                        f"{body.get('description') or r.status_code}")  # fmt: skip
                ids.append(body["result"]["message_id"])
                break
    return ids
