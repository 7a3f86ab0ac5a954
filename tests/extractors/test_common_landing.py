"""The raw landing writer and the incremental state, on the real warehouse."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from dwh.warehouse import Target
from extractors.common.errors import LockedError
from extractors.common.landing import RawLanding, RawRecord
from extractors.common.state import connection_lock, get_cursor, set_cursor


@pytest.fixture
def conn(warehouse: Target):
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        c.execute("drop table if exists raw_amocrm.test_things")
        c.execute("delete from ops.extract_cursors where connection_name = 'landing_test'")
        yield c


def rows(conn: psycopg.Connection):
    return conn.execute(
        "select id, record, is_deleted, deleted_at is not null from raw_amocrm.test_things "
        "where connection_name = 'landing_test' order by id"
    ).fetchall()


def rec(i: int, name: str) -> RawRecord:
    return RawRecord(str(i), {"id": i, "name": name}, datetime(2026, 1, i, tzinfo=UTC))


def test_upsert_is_idempotent_and_only_touches_changed_records(conn: psycopg.Connection) -> None:
    landing = RawLanding(conn, "amocrm", "landing_test")
    assert landing.upsert("test_things", [rec(1, "a"), rec(2, "b")]) == 2
    loaded = dict(conn.execute("select id, loaded_at from raw_amocrm.test_things").fetchall())
    assert landing.upsert("test_things", [rec(1, "a"), rec(2, "b")]) == 0, (
        "unchanged records are not rewritten"
    )
    assert landing.upsert("test_things", [rec(1, "a"), rec(2, "B")]) == 1
    after = dict(conn.execute("select id, loaded_at from raw_amocrm.test_things").fetchall())
    assert after["1"] == loaded["1"] and after["2"] > loaded["2"]
    assert [(r[0], r[1]["name"]) for r in rows(conn)] == [("1", "a"), ("2", "B")]


def test_append_inserts_events_once(conn: psycopg.Connection) -> None:
    landing = RawLanding(conn, "amocrm", "landing_test")
    assert landing.append("test_things", [rec(1, "e1"), rec(2, "e2")]) == 2
    assert landing.append("test_things", [rec(2, "e2"), rec(3, "e3")]) == 1
    assert [r[0] for r in rows(conn)] == ["1", "2", "3"]


def test_reconcile_marks_missing_as_deleted_and_revives_returning(conn: psycopg.Connection) -> None:
    landing = RawLanding(conn, "amocrm", "landing_test")
    landing.upsert("test_things", [rec(1, "a"), rec(2, "b"), rec(3, "c")])
    assert landing.reconcile("test_things", ["1", "3"]) == 1
    assert [(r[0], r[2], r[3]) for r in rows(conn)] == [
        ("1", False, False),
        ("2", True, True),
        ("3", False, False),
    ]
    assert landing.landed_ids("test_things") == {"1", "3"}
    landing.reconcile("test_things", ["1", "2", "3"])
    assert [r[2] for r in rows(conn)] == [False, False, False]


def test_upsert_deleted_records_keep_their_payload(conn: psycopg.Connection) -> None:
    landing = RawLanding(conn, "amocrm", "landing_test")
    landing.upsert("test_things", [rec(1, "a")])
    landing.upsert("test_things", [rec(1, "a-deleted")], deleted=True)
    assert rows(conn) == [("1", {"id": 1, "name": "a-deleted"}, True, True)]


def test_cursor_commits_with_its_records_or_not_at_all(conn: psycopg.Connection) -> None:
    landing = RawLanding(conn, "amocrm", "landing_test")
    with conn.transaction():
        landing.upsert("test_things", [rec(1, "a")])
        set_cursor(conn, "landing_test", "test_things", {"updated_at": 1})
    with pytest.raises(RuntimeError), conn.transaction():
        landing.upsert("test_things", [rec(2, "b")])
        set_cursor(conn, "landing_test", "test_things", {"updated_at": 2})
        raise RuntimeError("crash before commit")
    assert get_cursor(conn, "landing_test", "test_things") == {"updated_at": 1}
    assert [r[0] for r in rows(conn)] == ["1"]


def test_rejects_keep_reason_and_payload(conn: psycopg.Connection) -> None:
    landing = RawLanding(conn, "amocrm", "landing_test")
    landing.reject(
        "test_things", "42", "updated_at is not a timestamp: 'soon'", {"id": 42, "updated_at": "soon"}
    )
    row = conn.execute(
        "select reason, payload from ops.rejects where connection_name = 'landing_test' order by rejected_at desc"
    ).fetchone()
    assert row == ("updated_at is not a timestamp: 'soon'", {"id": 42, "updated_at": "soon"})


def test_one_connection_is_extracted_by_one_session_at_a_time(
    warehouse: Target, conn: psycopg.Connection
) -> None:
    with (
        connection_lock(conn, "landing_test"),
        psycopg.connect(warehouse.conninfo(), autocommit=True) as other,
    ):
        with (
            pytest.raises(LockedError, match="landing_test: another run is extracting"),
            connection_lock(other, "landing_test"),
        ):
            pass
        with connection_lock(other, "another_connection"):
            pass
    with (
        psycopg.connect(warehouse.conninfo(), autocommit=True) as other,
        connection_lock(other, "landing_test"),
    ):
        pass
