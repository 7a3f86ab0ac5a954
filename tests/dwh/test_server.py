"""The embedded warehouse: starts on an empty folder, is reused while it runs, keeps its
data across a stop and a start, and recovers after being killed. Each test has its own
data folder and port, apart from the session's warehouse."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dwh import server
from tests.support import free_port


@pytest.fixture
def own_server(tmp_path: Path):
    srv = server.EmbeddedServer(root=tmp_path / "postgres", port=free_port())
    yield srv
    server.stop(srv)


def query(srv: server.EmbeddedServer, sql: str):
    with psycopg.connect(srv.conninfo(), autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else None


def postmaster_pid(srv: server.EmbeddedServer) -> int:
    return int((srv.pgdata / "postmaster.pid").read_text().splitlines()[0])


def test_start_on_empty_folder_listens_on_socket_and_tcp(own_server: server.EmbeddedServer) -> None:
    assert not own_server.root.exists()
    server.start(own_server)
    assert query(own_server, "select current_database()") == [("dwh",)]
    tcp = psycopg.connect(
        host="127.0.0.1", port=own_server.port, dbname="dwh", user="dwh", password=own_server.admin_password()
    )
    with tcp:
        assert tcp.execute("select inet_server_addr()::text").fetchone()[0] == "127.0.0.1/32"


def test_the_warehouse_folds_cyrillic_case_and_sorts_by_code_point(own_server: server.EmbeddedServer) -> None:
    # stage and reason names from funnel.yaml are matched with lower(): «Новая заявка» == «НОВАЯ ЗАЯВКА»
    server.start(own_server)
    assert query(own_server, "select lower('Новая ЗАЯВКА'), upper('ёж')") == [("новая заявка", "ЁЖ")]
    assert query(
        own_server, "select array_agg(x order by x) from unnest(array['б', 'Я', 'a', 'Z']) as x"
    ) == [(["Z", "a", "Я", "б"],)]


def test_second_start_reuses_the_running_server(own_server: server.EmbeddedServer) -> None:
    server.start(own_server)
    pid = postmaster_pid(own_server)
    server.start(own_server)
    assert postmaster_pid(own_server) == pid
    assert server.is_running(own_server)


def test_data_survives_stop_and_start(own_server: server.EmbeddedServer) -> None:
    server.start(own_server)
    query(own_server, "create table kept as select 42 as answer")
    assert server.stop(own_server) is True
    assert not server.is_running(own_server)
    assert server.stop(own_server) is False
    server.start(own_server)
    assert query(own_server, "select answer from kept") == [(42,)]


def test_start_after_a_killed_server_recovers(own_server: server.EmbeddedServer) -> None:
    server.start(own_server)
    query(own_server, "create table survived as select 'yes' as v")
    old_pid = postmaster_pid(own_server)
    server.kill(own_server)
    assert (own_server.pgdata / "postmaster.pid").exists(), "a crash leaves its lock file behind"
    server.start(own_server)
    assert postmaster_pid(own_server) != old_pid
    assert query(own_server, "select v from survived") == [("yes",)]


def test_port_taken_by_another_server_is_a_clear_error(
    own_server: server.EmbeddedServer, tmp_path: Path
) -> None:
    server.start(own_server)
    other = server.EmbeddedServer(root=tmp_path / "other", port=own_server.port)
    with pytest.raises(server.WarehouseError, match=f"did not start on 127.0.0.1:{own_server.port}"):
        server.start(other)
