"""The demo's mail server keeps every message it receives as a .eml file."""

from __future__ import annotations

import email
from email.policy import default
from pathlib import Path

from dwh.config.models import EmailChannel
from dwh.notify import email as mail
from sandbox.mailbox import Mailbox


def test_messages_sent_to_the_mailbox_are_kept_as_eml(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "mailbox")
    port = box.start()
    try:
        channel = EmailChannel(
            smtp_host="127.0.0.1", smtp_port=port, security="none", sender="dwh@example.ru"
        )
        for subject in ("Проигранные сделки", "Воронка за неделю"):
            mail.send(
                channel,
                mail.build(mail.Email(subject, "текст", "<p>текст</p>"), "dwh@example.ru", ["rop@x.ru"]),
            )
    finally:
        box.stop()
    files = sorted((tmp_path / "mailbox").glob("*.eml"))
    assert len(files) == 2
    subjects = [email.message_from_bytes(f.read_bytes(), policy=default)["Subject"] for f in files]
    assert subjects == ["Проигранные сделки", "Воронка за неделю"]
