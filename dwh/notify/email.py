"""E-mail over SMTP: multipart messages (plain text and HTML, inline images, attachments),
sent with STARTTLS, SSL or no encryption, credentials from the environment."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from dwh.config.models import EmailChannel


@dataclass
class InlineImage:
    cid: str  # referenced from the HTML as <img src="cid:...">
    png: bytes


@dataclass
class Attachment:
    filename: str
    content: bytes
    mime: str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Email:
    subject: str
    text: str
    html: str
    images: list[InlineImage] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    message_id: str | None = None  # stable ids let a mail server or client spot a repeat


def build(email: Email, sender: str, recipients: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = email.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = email.message_id or make_msgid(domain="lossdwh.local")
    msg.set_content(email.text)
    msg.add_alternative(email.html, subtype="html")
    if email.images:
        html_part = msg.get_payload()[1]
        for image in email.images:
            html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>")
    for a in email.attachments:
        maintype, _, subtype = a.mime.partition("/")
        msg.add_attachment(a.content, maintype=maintype, subtype=subtype, filename=a.filename)
    return msg


def send(channel: EmailChannel, message: EmailMessage) -> None:
    """Send through the configured SMTP server; raises on any failure (nothing is half-sent)."""
    context = ssl.create_default_context(cafile=channel.ca_file)
    if channel.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(channel.smtp_host, channel.smtp_port, timeout=channel.timeout_seconds,
                                              context=context)  # fmt: skip
    else:
        smtp = smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=channel.timeout_seconds)
    with smtp:
        if channel.security == "starttls":
            smtp.starttls(context=context)
        if channel.username and channel.password:
            smtp.login(channel.username.get(), channel.password.get())
        smtp.send_message(message)


def write_eml(message: EmailMessage, folder: Path, name: str) -> Path:
    """Keep a copy as a .eml file (the demo's outbox; any mail client opens it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.eml"
    path.write_bytes(bytes(message))
    return path
