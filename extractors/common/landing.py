"""The raw landing writer: every record exactly as the API served it, as jsonb.

``raw_<system>.<entity>`` holds one row per (connection_name, id). Records are upserted
(a row changes only when the record did); event streams use the same table shape with
their own unique id and are inserted once (``append``). A record that disappeared at the
source is marked deleted, never dropped. Rejected records go to ``ops.rejects`` with the
reason and the payload.

The writer never commits: the caller wraps a page of records and the cursor that covers
them in one transaction (``with conn.transaction():``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class RawRecord:
    id: str
    record: dict[str, Any]
    updated_at: datetime | None = None


DDL = """
create table if not exists {table} (
    connection_name text not null,
    id text not null,
    record jsonb not null,
    updated_at timestamptz,
    loaded_at timestamptz not null default now(),
    is_deleted boolean not null default false,
    deleted_at timestamptz,
    primary key (connection_name, id)
)
"""


def _table(system: str, entity: str) -> sql.Composed:
    return sql.Identifier(f"raw_{system}", entity)


class RawLanding:
    def __init__(self, conn: psycopg.Connection, system: str, connection_name: str):
        self.conn, self.system, self.connection_name = conn, system, connection_name
        self._ensured: set[str] = set()

    def ensure(self, entity: str) -> None:
        if entity not in self._ensured:
            self.conn.execute(
                sql.SQL("create schema if not exists {}").format(sql.Identifier(f"raw_{self.system}"))
            )
            self.conn.execute(sql.SQL(DDL).format(table=_table(self.system, entity)))
            self._ensured.add(entity)

    def upsert(self, entity: str, records: Iterable[RawRecord], deleted: bool = False) -> int:
        """Insert or update; a row whose record is unchanged is left alone. Returns rows written."""
        self.ensure(entity)
        rows = [(self.connection_name, r.id, json.dumps(r.record, ensure_ascii=False), r.updated_at, deleted)
                for r in records]  # fmt: skip
        if not rows:
            return 0
        query = sql.SQL("""
            insert into {table} as t (connection_name, id, record, updated_at, is_deleted, deleted_at)
            select c, i, r::jsonb, u, d, case when d then now() end
            from unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::boolean[]) as x(c, i, r, u, d)
            on conflict (connection_name, id) do update set
                record = excluded.record,
                updated_at = excluded.updated_at,
                loaded_at = now(),
                is_deleted = excluded.is_deleted,
                deleted_at = case when excluded.is_deleted then coalesce(t.deleted_at, now()) end
            where t.record is distinct from excluded.record or t.is_deleted is distinct from excluded.is_deleted
        """).format(table=_table(self.system, entity))
        columns = list(zip(*rows, strict=True))
        cur = self.conn.execute(query, [list(col) for col in columns])
        return cur.rowcount

    def append(self, entity: str, records: Iterable[RawRecord]) -> int:
        """Insert events once; one already landed is skipped. Returns rows inserted."""
        self.ensure(entity)
        rows = [
            (self.connection_name, r.id, json.dumps(r.record, ensure_ascii=False), r.updated_at)
            for r in records
        ]
        if not rows:
            return 0
        query = sql.SQL("""
            insert into {table} (connection_name, id, record, updated_at)
            select c, i, r::jsonb, u
            from unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[]) as x(c, i, r, u)
            on conflict (connection_name, id) do nothing
        """).format(table=_table(self.system, entity))
        cur = self.conn.execute(query, [list(col) for col in zip(*rows, strict=True)])
        return cur.rowcount

    def mark_deleted(self, entity: str, ids: Iterable[str]) -> int:
        """The source says these records are gone."""
        self.ensure(entity)
        ids = list(ids)
        if not ids:
            return 0
        cur = self.conn.execute(
            sql.SQL("""update {table} set is_deleted = true, deleted_at = coalesce(deleted_at, now())
                       where connection_name = %s and id = any(%s) and not is_deleted""").format(
                table=_table(self.system, entity)),
            (self.connection_name, ids),
        )  # fmt: skip
        return cur.rowcount

    def reconcile(self, entity: str, present_ids: Iterable[str]) -> int:
        """A full reconciliation: every landed record not in ``present_ids`` is marked deleted,
        and a record marked deleted that is present again is revived."""
        self.ensure(entity)
        present = list(present_ids)
        table = _table(self.system, entity)
        gone = self.conn.execute(
            sql.SQL("""update {table} set is_deleted = true, deleted_at = now()
                       where connection_name = %s and not is_deleted and not (id = any(%s))""").format(table=table),
            (self.connection_name, present),
        ).rowcount  # fmt: skip
        self.conn.execute(
            sql.SQL("""update {table} set is_deleted = false, deleted_at = null
                       where connection_name = %s and is_deleted and id = any(%s)""").format(table=table),
            (self.connection_name, present),
        )  # fmt: skip
        return gone

    def landed_ids(self, entity: str) -> set[str]:
        self.ensure(entity)
        rows = self.conn.execute(
            sql.SQL("select id from {table} where connection_name = %s and not is_deleted").format(
                table=_table(self.system, entity)), (self.connection_name,)
        ).fetchall()  # fmt: skip
        return {r[0] for r in rows}

    def reject(self, entity: str, record_id: str | None, reason: str, payload: Any) -> None:
        self.conn.execute(
            "insert into ops.rejects (connection_name, entity, record_id, reason, payload) values (%s, %s, %s, %s, %s)",
            (
                self.connection_name,
                entity,
                record_id,
                reason,
                json.dumps(payload, ensure_ascii=False, default=str),
            ),
        )
