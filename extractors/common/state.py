"""Incremental state and the per-connection lock, both kept in the warehouse.

A cursor is written with ``set_cursor`` inside the same transaction as the records it
covers, so a crash can lose neither: either both are committed or neither is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from extractors.common.errors import LockedError


def get_cursor(conn: psycopg.Connection, connection_name: str, entity: str) -> dict[str, Any] | None:
    row = conn.execute(
        "select cursor from ops.extract_cursors where connection_name = %s and entity = %s",
        (connection_name, entity),
    ).fetchone()
    return row[0] if row else None


def set_cursor(conn: psycopg.Connection, connection_name: str, entity: str, cursor: dict[str, Any]) -> None:
    conn.execute(
        """insert into ops.extract_cursors (connection_name, entity, cursor, updated_at)
           values (%s, %s, %s::jsonb, now())
           on conflict (connection_name, entity) do update set cursor = excluded.cursor, updated_at = now()""",
        (connection_name, entity, json.dumps(cursor)),
    )


def _lock_key(connection_name: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"extract:{connection_name}".encode()).digest()[:8], "big", signed=True
    )


@contextmanager
def connection_lock(conn: psycopg.Connection, connection_name: str) -> Iterator[None]:
    """Hold a session-level advisory lock for the connection: two runs never extract the same
    CRM account at once, whatever executor or schedule started them."""
    key = _lock_key(connection_name)
    got = conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
    if not got:
        raise LockedError(
            connection_name, "another run is extracting this connection right now; it was skipped"
        )
    try:
        yield
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (key,))
