"""What was reported where, so each (deal, issue) reaches a channel once.

A digest is recorded as ``sending`` with its items *before* anything is sent, then marked
``sent``, or ``failed`` when the send raised (its items are offered again next time). A
digest found still ``sending`` by the next run was interrupted between send and record: it
may or may not have arrived, so it becomes ``uncertain`` and is not sent again (never twice),
and the engineers are told.
"""

from __future__ import annotations

import psycopg

DDL = """
create table if not exists ops.digests (
    digest_id bigserial primary key,
    kind text not null,
    channel text not null,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null check (status in ('sending', 'sent', 'failed', 'uncertain')),
    items integer not null,
    error text
);
create table if not exists ops.digest_items (
    digest_id bigint not null references ops.digests (digest_id),
    deal_key text not null,
    issue_type text not null,
    primary key (digest_id, deal_key, issue_type)
);
"""


def ensure(conn: psycopg.Connection) -> None:
    conn.execute(DDL)


def interrupted(conn: psycopg.Connection, kind: str) -> list[int]:
    """Digests left ``sending`` by a crash become ``uncertain``; returns their ids."""
    rows = conn.execute(
        """update ops.digests set status = 'uncertain', finished_at = now(),
               error = 'interrupted between send and record: not sent again'
           where kind = %s and status = 'sending' returning digest_id""",
        (kind,),
    ).fetchall()
    return [r[0] for r in rows]


def begin(conn: psycopg.Connection, kind: str, channel: str, items: list[tuple[str, str]]) -> int:
    with conn.transaction():
        digest_id = conn.execute(
            "insert into ops.digests (kind, channel, status, items) values (%s, %s, 'sending', %s) returning digest_id",
            (kind, channel, len(items)),
        ).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                "insert into ops.digest_items (digest_id, deal_key, issue_type) values (%s, %s, %s)",
                [(digest_id, deal, issue) for deal, issue in items],
            )
    return digest_id


def finish(conn: psycopg.Connection, digest_id: int, error: str | None = None) -> None:
    conn.execute(
        "update ops.digests set status = %s, finished_at = now(), error = %s where digest_id = %s",
        ("failed" if error else "sent", error, digest_id),
    )
