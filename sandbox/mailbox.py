"""A loopback SMTP server that keeps every message it receives as a .eml file: the demo's
stand-in for the company's mail server, so the digest and the reports are really sent."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from aiosmtpd.controller import Controller

from sandbox.standin import LOOPBACK


class _Keeper:
    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.count += 1
        subject = re.search(rb"^Subject: (.*)$", envelope.content, re.MULTILINE)
        slug = (
            re.sub(r"[^\w]+", "-", subject.group(1).decode(errors="replace"))[:40] if subject else "message"
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{self.count:04d}-{slug.strip('-') or 'message'}.eml").write_bytes(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self, folder: Path, port: int = 0):
        self.keeper = _Keeper(folder)
        # aiosmtpd's controller checks the server by connecting to its port: it needs a real one
        self.port = port or _free_port()
        self.controller = Controller(self.keeper, hostname=LOOPBACK, port=self.port)

    def start(self) -> int:
        self.controller.start()
        return self.port

    def stop(self) -> None:
        self.controller.stop()
