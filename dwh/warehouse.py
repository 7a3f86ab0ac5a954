"""One way to reach the warehouse: ``DWH_DATABASE_URL`` when set, else the embedded server.

``connect()`` is what every part of the product calls; ``dbt_env()`` gives the same
connection to dbt through the environment variables its committed ``profiles.yml`` reads.
Nothing here runs at import time.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg

from dwh import server

SYSTEMS = ("amocrm", "bitrix24", "onec", "megaplan", "creatio", "rosbiznessoft", "file")
LAYER_SCHEMAS = ("config", "staging", "intermediate", "marts", "ops")


@dataclass(frozen=True)
class Target:
    """Where the warehouse is. ``embedded`` is None for an external server."""

    host: str
    port: int
    dbname: str
    user: str
    password: str | None
    embedded: server.EmbeddedServer | None

    def conninfo(self) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, dbname=self.dbname, user=self.user, password=self.password or None
        )

    def describe(self) -> str:
        """Safe to print: never holds a password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


def target(start_embedded: bool = True) -> Target:
    """The warehouse to use. Starts the embedded server when no external one is configured."""
    url = os.environ.get("DWH_DATABASE_URL")
    if url:
        parts = urlsplit(url)
        return Target(
            host=parts.hostname or "localhost",
            port=parts.port or 5432,
            dbname=(parts.path or "/postgres").lstrip("/") or "postgres",
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            embedded=None,
        )
    embedded = server.start() if start_embedded else server.embedded_server()
    return Target(
        host=str(embedded.socket_dir),
        port=embedded.port,
        dbname=server.DATABASE,
        user=server.ADMIN_USER,
        password=None,
        embedded=embedded,
    )


def connect(tgt: Target | None = None, **kwargs) -> psycopg.Connection:
    tgt = tgt or target()
    return psycopg.connect(tgt.conninfo(), **kwargs)


def dbt_env(tgt: Target) -> dict[str, str]:
    """The variables ``dbt/profiles.yml`` reads."""
    return {
        "DWH_PG_HOST": tgt.host,
        "DWH_PG_PORT": str(tgt.port),
        "DWH_PG_DBNAME": tgt.dbname,
        "DWH_PG_USER": tgt.user,
        "DWH_PG_PASSWORD": tgt.password or "",
    }


def bi_credentials() -> tuple[str, str | None]:
    """The BI role's name and password (``DWH_BI_USER``/``DWH_BI_PASSWORD``).

    With the embedded warehouse and no ``DWH_BI_PASSWORD``, a password is generated once and
    kept in ``<data>/postgres/bi-password`` (readable by the owner only).
    """
    name = os.environ.get("DWH_BI_USER") or "bi_reader"
    password = os.environ.get("DWH_BI_PASSWORD")
    if password or os.environ.get("DWH_DATABASE_URL"):
        return name, password or None
    file = server.embedded_server().root / "bi-password"
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(secrets.token_urlsafe(18))
        file.chmod(0o600)
    return name, file.read_text().strip()
