"""E-mail to a real SMTP server on loopback (no encryption, STARTTLS, SSL, with login) and
Telegram messages to the Bot API stand-in, split under the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from dwh.config.models import EmailChannel, TelegramChannel
from dwh.notify import email as mail
from dwh.notify import telegram
from sandbox.telegram import TelegramStandIn
from tests.mail import SmtpServer


def message() -> mail.Email:
    return mail.Email(
        subject="Проигранные сделки с нарушениями",
        text="Иванов: 2 сделки без причины",
        html='<p>Иванов: <a href="http://127.0.0.1:18081/leads/detail/7">сделка 7</a></p><img src="cid:chart1">',
        images=[mail.InlineImage("chart1", b"\x89PNG\r\n\x1a\nfake")],
        attachments=[mail.Attachment("loss_report.xlsx", b"PK\x03\x04xlsx")],
    )


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_email_reaches_a_real_smtp_server(
    security: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_USER", "dwh")
    monkeypatch.setenv("SMTP_PASSWORD", "mail-password")
    with SmtpServer(security, tmp_path, login=("dwh", "mail-password")) as smtp:
        channel = EmailChannel.model_validate({
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": security, "sender": "dwh@example.ru",
            "username": "${SMTP_USER}", "password": "${SMTP_PASSWORD}",
            "ca_file": str(smtp.cert_file) if smtp.cert_file else None,
        })  # fmt: skip
        mail.send(channel, mail.build(message(), "dwh@example.ru", ["rop@example.ru"]))
    [received] = smtp.inbox.messages
    assert smtp.inbox.envelopes == [("dwh@example.ru", ["rop@example.ru"])]
    assert received["Subject"] == "Проигранные сделки с нарушениями"
    plain = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "2 сделки без причины" in plain
    assert 'href="http://127.0.0.1:18081/leads/detail/7"' in html
    parts = {p.get_content_type(): p for p in received.walk()}
    assert parts["image/png"]["Content-ID"] == "<chart1>"
    attachment = next(received.iter_attachments())
    assert attachment.get_filename() == "loss_report.xlsx"
    assert attachment.get_content() == b"PK\x03\x04xlsx"


def test_wrong_smtp_password_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import smtplib

    monkeypatch.setenv("SMTP_USER", "dwh")
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    with SmtpServer("starttls", tmp_path, login=("dwh", "right")) as smtp:
        channel = EmailChannel.model_validate({
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": "starttls", "sender": "dwh@example.ru",
            "username": "${SMTP_USER}", "password": "${SMTP_PASSWORD}", "ca_file": str(smtp.cert_file),
        })  # fmt: skip
        with pytest.raises(smtplib.SMTPAuthenticationError):
            mail.send(channel, mail.build(message(), "dwh@example.ru", ["rop@example.ru"]))
    assert smtp.inbox.messages == []


def test_eml_copy_opens_as_the_same_message(tmp_path: Path) -> None:
    import email as stdlib_email
    from email.policy import default

    path = mail.write_eml(
        mail.build(message(), "dwh@example.ru", ["rop@example.ru"]), tmp_path / "outbox", "digest"
    )
    parsed = stdlib_email.message_from_bytes(path.read_bytes(), policy=default)
    assert parsed["To"] == "rop@example.ru"
    assert "сделка 7" in parsed.get_body(("html",)).get_content()


def test_split_keeps_every_line_and_stays_under_the_limit() -> None:
    lines = [f"<b>Сделка {i}</b> — {'x' * (i % 90)} &amp; ещё" for i in range(600)]
    text = "\n".join(lines)
    pieces = telegram.split(text)
    assert len(pieces) > 1
    assert all(len(p) <= telegram.LIMIT for p in pieces)
    assert "\n".join(pieces) == text, "nothing lost or reordered, cut only at line ends"


def test_a_single_overlong_line_is_cut_outside_entities() -> None:
    line = "a&amp;" * 1000
    pieces = telegram.split(line)
    assert "".join(pieces) == line
    assert all(len(p) <= telegram.LIMIT and not p.startswith("amp;") for p in pieces)


def test_telegram_messages_arrive_split_and_escaped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    standin = TelegramStandIn(transcript_file=tmp_path / "transcript.txt")
    standin.start()
    try:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", standin.token)
        channel = TelegramChannel.model_validate(
            {"bot_token": "${TELEGRAM_BOT_TOKEN}", "api_base_url": standin.url}
        )
        body = "\n".join(f"<b>{telegram.escape(f'ООО «Ромашка» <{i}> & Co')}</b>" for i in range(400))
        ids = telegram.send(channel, "-1001234567890", body)
    finally:
        standin.stop()
    assert len(ids) == len(standin.messages) > 1
    joined = "\n".join(m.text for m in standin.messages)
    assert joined == body
    assert "&lt;0&gt; &amp; Co" in standin.messages[0].text
    assert (tmp_path / "transcript.txt").read_text(encoding="utf-8").strip() == standin.transcript()


def test_telegram_refusal_is_a_clear_error_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    standin = TelegramStandIn()
    standin.start()
    try:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "999:not-the-token")
        channel = TelegramChannel.model_validate(
            {"bot_token": "${TELEGRAM_BOT_TOKEN}", "api_base_url": standin.url}
        )
        with pytest.raises(telegram.TelegramError) as caught:
            telegram.send(channel, "1", "hello")
    finally:
        standin.stop()
    assert "Unauthorized" in str(caught.value)
    assert "not-the-token" not in str(caught.value)
