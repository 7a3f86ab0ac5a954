"""Warehouse queries the Bitrix24 extraction needs beyond ``RawLanding``: which landed rows a
page changed, deletions found by ID range during a full pass, and comments per deal."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from extractors.common.landing import RawRecord

SYSTEM = "bitrix24"

# an id as a number, or null for one that is not digits (never a cast error)
NUMERIC_ID = sql.SQL("(case when id ~ '^[0-9]+$' then id::numeric end)")


def _table(entity: str) -> sql.Composed:
    return sql.Identifier(f"raw_{SYSTEM}", entity)


def changed_ids(conn: psycopg.Connection, entity: str, connection: str, records: list[RawRecord]) -> set[str]:
    """Ids of ``records`` that are new, revived, or differ from what is landed."""
    if not records:
        return set()
    rows = conn.execute(
        sql.SQL("select id, record, is_deleted from {} where connection_name = %s and id = any(%s)").format(
            _table(entity)
        ),
        (connection, [r.id for r in records]),
    ).fetchall()
    landed = {row[0]: (row[1], row[2]) for row in rows}
    changed = set()
    for r in records:
        before = landed.get(r.id)
        if before is None or before[1] or before[0] != r.record:
            changed.add(r.id)
    return changed


def mark_missing_in_range(
    conn: psycopg.Connection,
    entity: str,
    connection: str,
    after: int,
    upto: int | None,
    present: Iterable[str],
    scope: tuple[str, str] | None = None,
) -> list[str]:
    """A full pass read every row with an ID in (``after``, ``upto``] (``upto`` None: to the
    end): landed rows in that range it did not see are gone at the source. Returns their ids."""
    conditions = [
        sql.SQL("connection_name = %s"),
        sql.SQL("not is_deleted"),
        sql.SQL("{} > %s").format(NUMERIC_ID),
        sql.SQL("not (id = any(%s))"),
    ]
    params: list[object] = [connection, after, list(present)]
    if upto is not None:
        conditions.append(sql.SQL("{} <= %s").format(NUMERIC_ID))
        params.append(upto)
    if scope is not None:
        conditions.append(sql.SQL("record ->> %s = %s"))
        params.extend(scope)
    query = sql.SQL("update {} set is_deleted = true, deleted_at = now() where {} returning id").format(
        _table(entity), sql.SQL(" and ").join(conditions)
    )
    return [row[0] for row in conn.execute(query, params).fetchall()]


def comments_of(conn: psycopg.Connection, connection: str, deal_ids: Iterable[str]) -> dict[str, set[str]]:
    """Landed, not deleted timeline comment ids per deal id."""
    rows = conn.execute(
        sql.SQL(
            "select record ->> 'ENTITY_ID', id from {} where connection_name = %s and not is_deleted "
            "and record ->> 'ENTITY_ID' = any(%s)"
        ).format(_table("timeline_comments")),
        (connection, list(deal_ids)),
    ).fetchall()
    out: dict[str, set[str]] = {}
    for deal_id, comment_id in rows:
        out.setdefault(deal_id, set()).add(comment_id)
    return out


def landed_ids(conn: psycopg.Connection, entity: str, connection: str) -> list[str]:
    rows = conn.execute(
        sql.SQL("select id from {} where connection_name = %s and not is_deleted").format(_table(entity)),
        (connection,),
    ).fetchall()
    return [row[0] for row in rows]


def count_landed(
    conn: psycopg.Connection, entity: str, connection: str, after: int, scope: tuple[str, str] | None = None
) -> int:
    """Landed, not deleted rows with an ID above ``after`` (in ``scope``): what a full pass
    from ``after`` expects to read again."""
    conditions = [
        sql.SQL("connection_name = %s"),
        sql.SQL("not is_deleted"),
        sql.SQL("{} > %s").format(NUMERIC_ID),
    ]
    params: list[object] = [connection, after]
    if scope is not None:
        conditions.append(sql.SQL("record ->> %s = %s"))
        params.extend(scope)
    query = sql.SQL("select count(*) from {} where {}").format(
        _table(entity), sql.SQL(" and ").join(conditions)
    )
    return int(conn.execute(query, params).fetchone()[0])
