"""Sending the digest: to each channel the issues it has not had yet, once.

Channels are ``email`` (one message to every e-mail recipient of the digest) and
``telegram:<chat id>`` (one conversation each). A copy of everything is written to the outbox
folder first, so what went out (or would have) can always be read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from dwh.config.models import AlertsConfig
from dwh.digest import state
from dwh.digest.issues import new_issues
from dwh.digest.render import render
from dwh.notify import email as mail
from dwh.notify import telegram

KIND = "lost_deal_issues_digest"
log = logging.getLogger(__name__)


@dataclass
class DigestReport:
    sent: dict[str, int] = field(default_factory=dict)  # channel -> issues reported
    failed: dict[str, str] = field(default_factory=dict)  # channel -> error
    nothing_new: list[str] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)  # digests interrupted by a crash
    files: list[Path] = field(default_factory=list)
    summaries: dict[str, str] = field(default_factory=dict)  # channel -> subject


def _targets(alerts: AlertsConfig) -> tuple[list[str], list[str]]:
    emails: list[str] = []
    chats: list[str] = []
    for recipient in alerts.recipients.values():
        if KIND in recipient.receives:
            emails += [e for e in recipient.email if e not in emails]
            chats += [c for c in recipient.telegram_chat_ids if c not in chats]
    return (emails if alerts.channels.email else []), (chats if alerts.channels.telegram else [])


def deliver(
    conn: psycopg.Connection, alerts: AlertsConfig, outbox: Path, currency: str = "RUB", marts: str = "marts"
) -> DigestReport:
    """``conn`` in autocommit mode; ``marts`` is the schema the issues are read from."""
    state.ensure(conn)
    report = DigestReport(uncertain=state.interrupted(conn, KIND))
    emails, chats = _targets(alerts)
    channels = (["email"] if emails else []) + [f"telegram:{c}" for c in chats]
    for channel in channels:
        issues = new_issues(conn, channel, marts)
        if not issues:
            report.nothing_new.append(channel)
            continue
        rendered = render(issues, currency)
        digest_id = state.begin(conn, KIND, channel, [(i.deal_key, i.issue_type) for i in issues])
        try:
            if channel == "email":
                assert alerts.channels.email is not None
                message = mail.build(
                    mail.Email(rendered.subject, rendered.text, rendered.html,
                               message_id=f"<digest-{digest_id}@lossdwh.local>"),
                    alerts.channels.email.sender, emails,
                )  # fmt: skip
                report.files.append(mail.write_eml(message, outbox, f"digest-{digest_id}-email"))
                mail.send(alerts.channels.email, message)
            else:
                assert alerts.channels.telegram is not None
                chat = channel.split(":", 1)[1]
                outbox.mkdir(parents=True, exist_ok=True)
                path = outbox / f"digest-{digest_id}-telegram-{chat}.txt"
                path.write_text("\n\n".join(telegram.split(rendered.telegram)), encoding="utf-8")
                report.files.append(path)
                telegram.send(alerts.channels.telegram, chat, rendered.telegram)
        except Exception as exc:  # the send failed: offered again next time, never marked sent
            error = f"{type(exc).__name__}: {exc}"[:500]
            state.finish(conn, digest_id, error)
            report.failed[channel] = error
            log.warning("digest to %s failed: %s", channel, error)
            continue
        state.finish(conn, digest_id)
        report.sent[channel] = len(issues)
        report.summaries[channel] = rendered.subject
    return report
