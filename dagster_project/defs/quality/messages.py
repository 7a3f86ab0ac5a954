"""What the data engineers are told, and how it reaches them: run failures and failed
checks, composed as e-mail (plain text and HTML) and Telegram HTML, sent to the recipients of
alerts.yaml who receive ``run_failures`` / ``failed_checks``, with a copy of each alert in
``<data dir>/outbox/`` (an ``.eml`` and a Telegram transcript) whatever the channels.

No secret reaches a message: every text passes ``Redactor``, which blanks the values of the
environment variables the configuration references, URL credentials, Bitrix24 webhook codes,
Telegram bot tokens and ``token=``/``password=`` parameters.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dwh.config import AlertsConfig, ConfigError, load_alerts
from dwh.config.secrets import EMBEDDED_REFERENCE
from dwh.notify import email as mail
from dwh.notify import telegram
from dwh.paths import config_dir, data_dir

Kind = Literal["run_failures", "failed_checks"]
MAX_ERROR_CHARS = 1500  # of one error message; a stack trace belongs in the Dagster UI
MAX_WARNINGS_LISTED = 20
TRANSCRIPT = "telegram-alerts.txt"

log = logging.getLogger(__name__)


# -- secrets never leave ------------------------------------------------------------------------
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|WEBHOOK|API_KEY|CREDENTIAL)", re.IGNORECASE)
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+@"), "***@"),  # user:password@host
    (re.compile(r"(/rest/\d+/)[^/\s]+"), r"\1***"),  # a Bitrix24 webhook's code
    (re.compile(r"(/bot)[^/\s]+"), r"\1***"),  # a Telegram bot token in an API URL
    (re.compile(r"(?i)((?:access_|refresh_)?token|password|secret|client_secret|apikey|api_key)=[^&\s]+"),
     r"\1=***"),
]  # fmt: skip


class Redactor:
    """Blanks secrets in text. ``secrets`` are literal values (from the environment)."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    @classmethod
    def from_environment(cls, directory: Path | None = None) -> Redactor:
        """The values of every ``${VAR}`` the configuration files reference, and of every
        environment variable whose name says it holds a secret."""
        directory = directory or config_dir()
        names: set[str] = {n for n in os.environ if SECRET_NAME.search(n)}
        for file in ("sources.yaml", "alerts.yaml", "funnel.yaml"):
            path = directory / file
            if path.exists():
                names |= set(EMBEDDED_REFERENCE.findall(path.read_text(encoding="utf-8", errors="replace")))
        return cls(os.environ[n] for n in names if os.environ.get(n))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        for pattern, replacement in PATTERNS:
            text = pattern.sub(replacement, text)
        return text


# -- what an alert says ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    kind: Kind
    key: str  # stable: the outbox file's name and the Message-ID
    subject: str
    text: str  # plain text (e-mail)
    html: str  # e-mail HTML
    telegram: str  # Telegram HTML (b, i, a, code)


@dataclass(frozen=True)
class CheckFailure:
    asset: str  # "marts/fct_deals"
    check: str
    severity: Literal["ERROR", "WARN"]
    description: str
    unexpected_count: int | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    blocking: bool = False  # an ERROR that held back what is downstream in its run


def run_link(base_url: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/runs/{run_id}"


def checks_link(base_url: str, asset: str) -> str:
    return f"{base_url.rstrip('/')}/assets/{asset}?view=checks"


def _short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def run_failure_alert(
    job_name: str,
    run_id: str,
    error: str,
    failed_steps: Sequence[tuple[str, str]],
    base_url: str,
    redact: Redactor,
) -> Alert:
    """A run failed: which job, why, which steps, and the link that opens the run."""
    link = run_link(base_url, run_id)
    error = _short(redact(error or "the run failed"))
    steps = [(step, _short(redact(message), 600)) for step, message in failed_steps]
    subject = redact(f"[DWH] Run failed: {job_name} ({run_id[:8]})")
    text_lines = [f"The run {run_id} of {job_name} failed.", f"Open it: {link}", "", error]
    if steps:
        text_lines += ["", "Failed steps:"] + [f"- {step}: {message}" for step, message in steps]
    steps_html = "".join(f"<li><code>{_e(step)}</code>: {_e(message)}</li>" for step, message in steps)
    body_html = (
        f'<p>The run <a href="{_e(link)}">{_e(run_id)}</a> of <b>{_e(job_name)}</b> failed.</p>'
        f"<pre>{_e(error)}</pre>" + (f"<p>Failed steps:</p><ul>{steps_html}</ul>" if steps else "")
    )
    tg_steps = "".join(f"\n• <code>{telegram.escape(step)}</code>: {telegram.escape(m)}" for step, m in steps)
    tg = (
        f"<b>Run failed: {telegram.escape(job_name)}</b>\n"
        f'<a href="{_e(link)}">{telegram.escape(run_id)}</a>\n{telegram.escape(error)}'
        + (f"\n\nFailed steps:{tg_steps}" if steps else "")
    )
    return Alert(
        "run_failures", f"run-failure-{run_id}", subject, "\n".join(text_lines), _page(subject, body_html), tg
    )


def _values(n: int) -> str:
    return f"{n} unexpected value{'' if n == 1 else 's'}"


def _sample_text(sample: Sequence[Mapping[str, Any]], limit: int = 3) -> list[str]:
    return ["; ".join(f"{k}={v}" for k, v in row.items()) for row in sample[:limit]]


def failed_checks_alert(
    job_name: str,
    run_id: str,
    run_status: str,
    failures: Sequence[CheckFailure],
    base_url: str,
    redact: Redactor,
) -> Alert | None:
    """Failed checks of one run: errors in full (what broke, how many values, a few of the
    offending rows), warnings as a summary. None when nothing failed."""
    if not failures:
        return None
    errors = [f for f in failures if f.severity == "ERROR"]
    warnings = [f for f in failures if f.severity != "ERROR"]
    link = run_link(base_url, run_id)
    counts = ", ".join(
        part
        for part in (
            f"{len(errors)} error{'s' if len(errors) != 1 else ''}" if errors else "",
            f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else "",
        )
        if part
    )
    subject = redact(f"[DWH] Failed checks in {job_name} ({run_id[:8]}): {counts}")
    text = [
        f"The run {run_id} of {job_name} ({run_status.lower()}) has failed checks: {counts}.",
        f"Open it: {link}",
    ]
    body = [f"<p>The run <a href=\"{_e(link)}\">{_e(run_id)}</a> of <b>{_e(job_name)}</b> "
            f"({_e(run_status.lower())}) has failed checks: {_e(counts)}.</p>"]  # fmt: skip
    tg = [f"<b>Failed checks: {telegram.escape(counts)}</b>",
          f"{telegram.escape(job_name)}, run <a href=\"{_e(link)}\">{telegram.escape(run_id[:8])}</a>"]  # fmt: skip
    if errors:
        text += ["", "Errors:"]
        body.append("<h3>Errors</h3><ul>")
        tg += ["", "<b>Errors</b>"]
        for f in errors:
            description = _short(redact(f.description), 600)
            sample = [redact(s) for s in _sample_text(f.sample)]
            count = f" — {_values(f.unexpected_count)}" if f.unexpected_count else ""
            if f.blocking:
                count += " (blocking: what is downstream was not built)"
            clink = checks_link(base_url, f.asset)
            text += [f"- {f.asset} · {f.check}{count}", f"  {description}", f"  {clink}"]
            text += [f"  e.g. {s}" for s in sample]
            body.append(
                f'<li><a href="{_e(clink)}"><b>{_e(f.asset)}</b></a> · {_e(f.check)}{_e(count)}'
                f"<br>{_e(description)}" + "".join(f"<br><code>{_e(s)}</code>" for s in sample) + "</li>"
            )
            tg.append(f"• <b>{telegram.escape(f.asset)}</b> · {telegram.escape(f.check)}{telegram.escape(count)}\n"
                      f"  {telegram.escape(description)}"
                      + "".join(f"\n  <code>{telegram.escape(s)}</code>" for s in sample))  # fmt: skip
        body.append("</ul>")
    if warnings:
        listed = warnings[:MAX_WARNINGS_LISTED]
        more = len(warnings) - len(listed)
        lines = [
            f"{f.asset} · {f.check}" + (f" ({f.unexpected_count} unexpected)" if f.unexpected_count else "")
            for f in listed
        ]
        if more:
            lines.append(f"and {more} more")
        text += ["", f"Warnings ({len(warnings)}):"] + [f"- {line}" for line in lines]
        body.append(
            f"<h3>Warnings ({len(warnings)})</h3><ul>" + "".join(f"<li>{_e(x)}</li>" for x in lines) + "</ul>"
        )
        tg += ["", f"<b>Warnings ({len(warnings)})</b>"] + [f"• {telegram.escape(x)}" for x in lines]
    return Alert(
        "failed_checks",
        f"failed-checks-{run_id}",
        subject,
        "\n".join(text),
        _page(subject, "".join(body)),
        "\n".join(tg),
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{_e(title)}</title></head>'
        f'<body style="font-family: sans-serif">{body}</body></html>'
    )


# -- delivery -------------------------------------------------------------------------------------
@dataclass
class Delivery:
    emailed: list[str] = field(default_factory=list)
    telegram_chats: list[str] = field(default_factory=list)
    outbox: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"e-mailed {', '.join(self.emailed)}" if self.emailed else "no e-mail sent",
            f"sent to Telegram chats {', '.join(self.telegram_chats)}"
            if self.telegram_chats
            else "no Telegram sent",
            f"copy in {self.outbox[0].parent}" if self.outbox else "",
        ]
        return "; ".join(p for p in parts + self.problems if p)


def outbox_dir() -> Path:
    return data_dir() / "outbox"


def load_alerts_config(directory: Path | None = None) -> tuple[AlertsConfig, str | None]:
    """alerts.yaml, or no channels and the reason when it is missing or wrong (an alert about
    a failed run must not fail for want of a configuration)."""
    try:
        return load_alerts(directory), None
    except ConfigError as exc:
        return AlertsConfig(), f"alerts not sent, only written to the outbox: {exc}"


def deliver(
    alert: Alert, config: AlertsConfig, outbox: Path | None = None, redact: Redactor | None = None
) -> Delivery:
    """Send ``alert`` to everyone who receives its kind, over every configured channel; keep a
    copy in the outbox. A channel that fails is reported in ``problems``; the others still go."""
    outbox = outbox or outbox_dir()
    redact = redact or Redactor()
    report = Delivery()
    recipients = [r for r in config.recipients.values() if alert.kind in r.receives]
    addresses = sorted({a for r in recipients for a in r.email})
    chats = sorted({c for r in recipients for c in r.telegram_chat_ids})
    channel = config.channels.email
    message = mail.build(
        mail.Email(alert.subject, alert.text, alert.html, message_id=f"<{alert.key}@lossdwh.local>"),
        sender=channel.sender if channel else "lossdwh@localhost",
        recipients=addresses,
    )
    report.outbox.append(mail.write_eml(message, outbox, alert.key))
    report.outbox.append(_transcribe(outbox, alert, chats))
    if addresses and channel:
        try:
            mail.send(channel, message)
            report.emailed = addresses
        except Exception as exc:  # any failure of the SMTP conversation
            report.problems.append(
                redact(
                    f"e-mail to {', '.join(addresses)} via {channel.smtp_host}:{channel.smtp_port} failed: "
                    f"{type(exc).__name__}: {exc}"
                )
            )
    tg_channel = config.channels.telegram
    if chats and tg_channel:
        for chat in chats:
            try:
                telegram.send(tg_channel, chat, alert.telegram)
                report.telegram_chats.append(chat)
            except Exception as exc:
                report.problems.append(redact(f"Telegram to chat {chat} failed: {type(exc).__name__}: {exc}"))
    return report


def _transcribe(outbox: Path, alert: Alert, chats: Sequence[str]) -> Path:
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / TRANSCRIPT
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    to = ", ".join(chats) if chats else f"nobody (no Telegram recipient receives {alert.kind})"
    with path.open("a", encoding="utf-8") as out:
        for n, piece in enumerate(telegram.split(alert.telegram), start=1):
            out.write(f"--- {at} · {alert.key} · part {n} · to {to} ---\n{piece}\n\n")
    return path
