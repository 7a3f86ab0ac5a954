"""Sending the weekly funnel report: once per week and channel, a copy in the outbox first.

Channels are ``email`` (one message to every e-mail recipient of ``weekly_funnel_report``
in alerts.yaml) and ``telegram:<chat id>``. A send is recorded as ``sending`` before it is
made and ``sent`` or ``failed`` after; a record left ``sending`` by a crash becomes
``uncertain`` and is not sent again (never twice) unless forced. A failed send is tried
again on the next run of the same week.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dwh.config.models import AlertsConfig
from dwh.notify import email as mail
from dwh.notify import telegram
from dwh.reports.weekly import WeeklyReport

KIND = "weekly_funnel_report"
log = logging.getLogger(__name__)

DDL = """
create table if not exists ops.report_deliveries (
    delivery_id bigserial primary key,
    kind text not null,
    period text not null,
    channel text not null,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null check (status in ('sending', 'sent', 'failed', 'uncertain')),
    error text
);
create index if not exists report_deliveries_period on ops.report_deliveries (kind, period, channel);
"""


@dataclass
class Delivery:
    files: list[Path] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    uncertain: list[int] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)


def targets(alerts: AlertsConfig) -> tuple[list[str], list[str]]:
    """(e-mail addresses, Telegram chat ids) that receive the weekly report."""
    emails: list[str] = []
    chats: list[str] = []
    for recipient in alerts.recipients.values():
        if KIND in recipient.receives:
            emails += [e for e in recipient.email if e not in emails]
            chats += [c for c in recipient.telegram_chat_ids if c not in chats]
    return (emails if alerts.channels.email else []), (chats if alerts.channels.telegram else [])


def _done(conn: psycopg.Connection, period: str, channel: str) -> bool:
    return bool(conn.execute(
        """select 1 from ops.report_deliveries where kind = %s and period = %s and channel = %s
           and status in ('sending', 'sent', 'uncertain')""",
        (KIND, period, channel),
    ).fetchone())  # fmt: skip


def _begin(conn: psycopg.Connection, period: str, channel: str) -> int:
    return conn.execute(
        "insert into ops.report_deliveries (kind, period, channel, status) values (%s, %s, %s, 'sending') "
        "returning delivery_id",
        (KIND, period, channel),
    ).fetchone()[0]


def _finish(conn: psycopg.Connection, delivery_id: int, error: str | None = None) -> None:
    conn.execute(
        "update ops.report_deliveries set status = %s, finished_at = now(), error = %s where delivery_id = %s",
        ("failed" if error else "sent", error, delivery_id),
    )


def deliver(
    conn: psycopg.Connection,
    alerts: AlertsConfig,
    report: WeeklyReport,
    outbox: Path,
    send: bool = True,
    force: bool = False,
) -> Delivery:
    """Write the outbox copies; with ``send``, send to each channel that has not had this
    week's report (``force``: send again anyway). ``conn`` in autocommit mode."""
    emails, chats = targets(alerts)
    result = Delivery(recipients=emails + [f"telegram:{c}" for c in chats])
    sender = alerts.channels.email.sender if alerts.channels.email else "lossdwh@localhost"
    message = mail.build(report.email, sender, emails or ["undisclosed-recipients:;"])
    name = f"weekly-funnel-{report.week.label}"
    result.files.append(mail.write_eml(message, outbox, name))
    tg_file = outbox / f"{name}-telegram.txt"
    tg_file.write_text("\n\n".join(telegram.split(report.telegram)), encoding="utf-8")
    result.files.append(tg_file)
    if not send:
        return result
    conn.execute(DDL)
    result.uncertain = [r[0] for r in conn.execute(
        """update ops.report_deliveries set status = 'uncertain', finished_at = now(),
               error = 'interrupted between send and record: not sent again'
           where kind = %s and status = 'sending' returning delivery_id""", (KIND,),
    ).fetchall()]  # fmt: skip
    channels = (["email"] if emails else []) + [f"telegram:{c}" for c in chats]
    for channel in channels:
        if not force and _done(conn, report.week.label, channel):
            result.already_sent.append(channel)
            continue
        delivery_id = _begin(conn, report.week.label, channel)
        try:
            if channel == "email":
                assert alerts.channels.email is not None
                mail.send(alerts.channels.email, message)
            else:
                assert alerts.channels.telegram is not None
                telegram.send(alerts.channels.telegram, channel.split(":", 1)[1], report.telegram)
        except Exception as exc:  # recorded and reported; tried again on the next run
            error = f"{type(exc).__name__}: {exc}"[:500]
            _finish(conn, delivery_id, error)
            result.failed[channel] = error
            log.warning("weekly funnel report to %s failed: %s", channel, error)
            continue
        _finish(conn, delivery_id)
        result.sent.append(channel)
    return result
