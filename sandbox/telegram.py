"""A stand-in of the Telegram Bot API (``sendMessage``, ``getMe``) on loopback.

It keeps what it received (``messages``) so tests and the demo can read the transcript, and
answers as Telegram does: ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error_code":
400, "description": "Bad Request: ..."}``; a message over 4,096 characters (after entity
parsing) is refused, and so is HTML that does not parse.
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from sandbox.standin import Request, Response, StandIn

ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "span",
                "tg-spoiler", "blockquote"}  # fmt: skip


@dataclass
class Message:
    message_id: int
    chat_id: str
    text: str  # as sent, with its HTML


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None
        self.plain: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = self.error or f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = self.error or f'Unexpected end tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.plain.append(data)


def parse_html(text: str) -> tuple[str | None, str]:
    """(error, the text a user sees)."""
    if re.search(r"&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", text):
        return "Can't parse entities: unsupported character reference", ""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    if checker.stack and not checker.error:
        checker.error = f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
    return checker.error, html.unescape("".join(checker.plain))


class TelegramStandIn(StandIn):
    name = "telegram"

    def __init__(
        self, token: str = "123456:sandbox-bot-token", transcript_file: Path | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.token = token
        self.messages: list[Message] = []
        self.transcript_file = transcript_file  # every message is appended here as it arrives

    def credentials(self) -> dict[str, str]:
        return {"TELEGRAM_BOT_TOKEN": self.token}

    @staticmethod
    def _error(code: int, description: str) -> Response:
        return Response.json(code, {"ok": False, "error_code": code, "description": description})

    def handle(self, request: Request) -> Response:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path)
        if not match:
            return self._error(404, "Not Found")
        token, method = match.groups()
        if token != self.token:
            return self._error(401, "Unauthorized")
        if method == "getMe":
            return Response.json(
                200, {"ok": True, "result": {"id": 123456, "is_bot": True, "first_name": "DWH"}}
            )
        if method != "sendMessage":
            return self._error(404, "Not Found: method not found")
        params = request.json() if request.body else dict(request.query)
        chat_id, text = str(params.get("chat_id", "")), params.get("text", "")
        if not chat_id:
            return self._error(400, "Bad Request: chat_id is empty")
        if not text:
            return self._error(400, "Bad Request: message text is empty")
        shown = text
        if params.get("parse_mode") == "HTML":
            error, shown = parse_html(text)
            if error:
                return self._error(400, f"Bad Request: {error}")
        if len(shown) > 4096:
            return self._error(400, "Bad Request: message is too long")
        with self.lock:
            message = Message(len(self.messages) + 1, chat_id, text)
            self.messages.append(message)
            if self.transcript_file is not None:
                self.transcript_file.parent.mkdir(parents=True, exist_ok=True)
                with open(self.transcript_file, "a", encoding="utf-8") as out:
                    out.write(self._entry(message) + "\n\n")
        return Response.json(200, {"ok": True, "result": {
            "message_id": message.message_id, "date": int(time.time()),
            "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id, "type": "group"},
            "text": shown}})  # fmt: skip

    @staticmethod
    def _entry(m: Message) -> str:
        return f"--- message {m.message_id} to chat {m.chat_id} ---\n{m.text}"

    def transcript(self) -> str:
        return "\n\n".join(self._entry(m) for m in self.messages)
