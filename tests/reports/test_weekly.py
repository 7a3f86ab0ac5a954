"""The weekly funnel report as the head of sales receives it: over a real SMTP server on
loopback, with the managers-by-stages table coloured against the targets, the coaching pairs,
the week's losses against the previous weeks, inline charts and the Excel file attached;
a short Telegram message; a copy in the outbox; once per week and channel."""

from __future__ import annotations

import io
import re
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import psycopg
import pytest

from dwh.config import load_alerts
from dwh.config.models import FunnelConfig
from dwh.reports import deliver, run
from dwh.reports.settings import ReportSettings
from dwh.warehouse import Target
from sandbox.telegram import TelegramStandIn
from tests.mail import SmtpServer
from tests.reports.marts import AS_OF, CLIENT_EMAIL, IVANOV, PHONE, SIDOROV, write_config


class Tables(HTMLParser):
    """The HTML's tables as rows of (text, style) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str]]]] = {}
        self.current: list[list[tuple[str, str]]] | None = None
        self.cell: list[str] | None = None
        self.style = ""
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.current = self.tables.setdefault(a.get("data-table") or str(len(self.tables)), [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th"):
            self.cell, self.style = [], a.get("style") or ""
        elif tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.current is not None:
            self.current[-1].append(("".join(self.cell).strip(), self.style))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    telegram = TelegramStandIn()
    telegram.start()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", telegram.token)
    with SmtpServer("none") as smtp:
        yield smtp, telegram, write_config(tmp_path / "config", smtp.port, telegram.url)
    telegram.stop()


def clear_deliveries(conn: psycopg.Connection) -> None:
    conn.execute(deliver.DDL)
    conn.execute("delete from ops.report_deliveries where kind = %s", (deliver.KIND,))


def make_report(report_target: Target, funnel: FunnelConfig, tmp_path: Path, lang: str = "ru"):
    settings = ReportSettings(language=lang, export_dir=tmp_path / "exports")  # type: ignore[arg-type]
    with psycopg.connect(report_target.conninfo(), autocommit=True) as conn:
        xlsx, _ = run.excel_report(conn, funnel, settings, AS_OF)
        return run.weekly_report(conn, funnel, settings, AS_OF, xlsx), xlsx


def test_the_head_of_sales_receives_the_weekly_report(
    servers, report_target: Target, report_db: psycopg.Connection, funnel: FunnelConfig, tmp_path: Path
) -> None:
    smtp, telegram, config = servers
    clear_deliveries(report_db)
    report, xlsx = make_report(report_target, funnel, tmp_path)
    result = deliver.deliver(report_db, load_alerts(config), report, tmp_path / "outbox")
    assert result.sent == ["email", "telegram:-1001234567890"] and not result.failed

    [received] = smtp.inbox.messages
    assert isinstance(received, EmailMessage)
    assert smtp.inbox.envelopes[0][1] == ["rop@example.ru", "deputy@example.ru"]
    assert received["Subject"] == "Воронка продаж по менеджерам: неделя 03.03.2025 — 09.03.2025"
    html = received.get_body(("html",)).get_content()
    page = Tables()
    page.feed(html)

    # the weekly review table: managers as rows, stages as columns, coloured against the target
    table = page.tables["conversion"]
    assert [c[0] for c in table[0]] == ["Менеджер", "Новая заявка → Первичный контакт",
                                        "Первичный контакт → Презентация", "Презентация → Договор",
                                        "Договор → Оплачено"]  # fmt: skip
    assert [c[0] for c in table[1]] == ["Цель", "100%", "80%", "80%", "95%"]
    by_name = {row[0][0]: row[1:] for row in table[2:]}
    assert [re.match(r"\d+%", c[0]).group(0) for c in by_name[IVANOV[1]]] == ["80%", "70%", "86%", "96%"]
    assert [re.match(r"\d+%", c[0]).group(0) for c in by_name[SIDOROV[1]]] == ["96%", "90%", "70%", "80%"]
    red = [["#F8CBAD" in c[1] for c in by_name[name]] for name in (IVANOV[1], SIDOROV[1])]
    green = [["#C6EFCE" in c[1] for c in by_name[name]] for name in (IVANOV[1], SIDOROV[1])]
    assert red == [[True, True, False, False], [True, False, True, True]]
    assert green == [[not r for r in row] for row in red]
    assert by_name[IVANOV[1]][0][0].endswith("(80/100)"), "the weeks of the window summed: moved on / reached"

    # who should learn what from whom
    assert (
        "Иванов Иван: Новая заявка → Первичный контакт — 80% при цели 100%; учиться у: Сидоров Пётр (96%)"
        in html
    )
    assert "Сидоров Пётр: Договор → Оплачено — 80% при цели 95%; учиться у: Иванов Иван (96%)" in html

    # the week's losses against the four weeks before
    stages = {row[0][0]: [c[0] for c in row[1:]] for row in page.tables["losses-stage"][1:]}
    reasons = {row[0][0]: [c[0] for c in row[1:]] for row in page.tables["losses-reason"][1:]}
    assert reasons["Высокая цена"][0] == "2" and reasons["Другое"][0] == "0"
    assert stages["Договор"][:3] == ["1", "990\u00a0000\u00a0₽", "25%"]
    assert stages["Первичный контакт"][3:5] == ["0,2", "33%"]
    assert sum(int(v[0]) for v in stages.values()) == 4
    assert "За неделю проиграно 4 сделки на 1\u00a0465\u00a0500\u00a0₽" in html.replace("&nbsp;", "\u00a0")

    # the charts inline, the xlsx attached
    parts = {p["Content-ID"]: p for p in received.walk() if p.get_content_type() == "image/png"}
    assert set(parts) == {"<funnel-conversion>", "<loss-structure>"}
    assert {f"cid:{cid.strip('<>')}" for cid in parts} == set(page.images)
    assert all(p.get_content().startswith(b"\x89PNG") and len(p.get_content()) > 5000 for p in parts.values())
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "loss_report_2025-03-12.xlsx"
    assert attachment.get_content() == xlsx.read_bytes()
    assert openpyxl.load_workbook(io.BytesIO(attachment.get_content())).sheetnames[0] == "Сводка"
    plain = received.get_body(("plain",)).get_content()
    assert "Иванов Иван: 80% (ниже цели) | 70% (ниже цели) | 86% | 96%" in plain

    # nothing personal
    for text in (html, plain):
        assert CLIENT_EMAIL not in text and PHONE not in text

    # Telegram: the headline numbers, short
    [message] = telegram.messages
    assert message.chat_id == "-1001234567890"
    assert "За неделю проиграно 4 сделки" in message.text
    assert "Ниже цели: 5 из 8 показателей." in message.text
    assert "• Иванов Иван ← Сидоров Пётр: Новая заявка → Первичный контакт" in message.text
    assert len(message.text) < 1500

    # the outbox copy is the message that went out
    eml = tmp_path / "outbox" / "weekly-funnel-2025-W10.eml"
    assert eml in result.files
    assert eml.read_bytes().count(b"Content-ID: <funnel-conversion>") == 1


def test_each_week_goes_out_once_per_channel(
    servers, report_target: Target, report_db: psycopg.Connection, funnel: FunnelConfig, tmp_path: Path
) -> None:
    smtp, telegram, config = servers
    clear_deliveries(report_db)
    report, _ = make_report(report_target, funnel, tmp_path, lang="en")
    alerts = load_alerts(config)
    first = deliver.deliver(report_db, alerts, report, tmp_path / "outbox")
    again = deliver.deliver(report_db, alerts, report, tmp_path / "outbox")
    assert first.sent == ["email", "telegram:-1001234567890"]
    assert again.sent == [] and again.already_sent == ["email", "telegram:-1001234567890"]
    assert len(smtp.inbox.messages) == 1 and len(telegram.messages) == 1
    assert smtp.inbox.messages[0]["Subject"] == "Sales funnel per manager: week 2025-03-03 to 2025-03-09"
    forced = deliver.deliver(report_db, alerts, report, tmp_path / "outbox", force=True)
    assert forced.sent == ["email", "telegram:-1001234567890"] and len(smtp.inbox.messages) == 2


def test_outbox_only_without_send_and_a_failed_channel_is_tried_again(
    report_target: Target, report_db: psycopg.Connection, funnel: FunnelConfig, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.support import free_port

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:unused")
    dead_port = free_port()  # nothing listens there
    config = write_config(tmp_path / "config", dead_port, f"http://127.0.0.1:{free_port()}")
    alerts = load_alerts(config)
    clear_deliveries(report_db)
    report, _ = make_report(report_target, funnel, tmp_path)
    quiet = deliver.deliver(report_db, alerts, report, tmp_path / "outbox", send=False)
    assert quiet.sent == [] and quiet.failed == {}
    assert (tmp_path / "outbox" / "weekly-funnel-2025-W10.eml").exists()
    assert (tmp_path / "outbox" / "weekly-funnel-2025-W10-telegram.txt").read_text().startswith("<b>Воронка")
    failed = deliver.deliver(report_db, alerts, report, tmp_path / "outbox")
    assert set(failed.failed) == {"email", "telegram:-1001234567890"}
    assert "ConnectionRefusedError" in failed.failed["email"]
    with SmtpServer("none") as smtp:
        config = write_config(tmp_path / "config", smtp.port, f"http://127.0.0.1:{dead_port}")
        retried = deliver.deliver(report_db, load_alerts(config), report, tmp_path / "outbox")
    assert "email" in retried.sent, "a failed send is not marked as sent"
    assert len(smtp.inbox.messages) == 1
