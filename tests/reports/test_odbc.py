"""Excel's way into the warehouse: the psqlODBC driver ("PostgreSQL Unicode", as on Windows)
over TCP on 127.0.0.1 as the BI role. It reads the marts and nothing else, and writes nothing."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import psycopg
import pyodbc
import pytest

from dwh.warehouse import Target, bi_credentials

DRIVER = "PostgreSQL Unicode"


def connection_string(target: Target) -> str:
    user, password = bi_credentials()
    assert password, "the embedded warehouse gives the BI role a password"
    return (f"DRIVER={{{DRIVER}}};SERVER=127.0.0.1;PORT={target.port};DATABASE={target.dbname};"
            f"UID={user};PWD={{{password}}};SSLmode=disable")  # fmt: skip


@pytest.fixture
def odbc(report_target: Target):
    registered = Path("/etc/odbcinst.ini").read_text() if Path("/etc/odbcinst.ini").exists() else ""
    if f"[{DRIVER}]" not in registered:
        pytest.fail(f"the psqlODBC driver {DRIVER!r} is not registered in /etc/odbcinst.ini: "
                    "apt-get install odbc-postgresql unixodbc (the CI script installs them)")  # fmt: skip
    conn = pyodbc.connect(connection_string(report_target), timeout=15, autocommit=True)
    yield conn
    conn.close()


def test_the_bi_role_reads_the_marts_over_odbc(odbc, report_db: psycopg.Connection) -> None:
    cursor = odbc.cursor()
    assert cursor.execute("select current_user").fetchone()[0] == bi_credentials()[0]
    got = cursor.execute(
        "select month, loss_reason_name, lost_deals, lost_amount_base from marts.rpt_loss_by_reason "
        "order by month, loss_reason_name"
    ).fetchall()
    expected = report_db.execute(
        "select month, loss_reason_name, lost_deals, lost_amount_base from marts.rpt_loss_by_reason "
        "order by month, loss_reason_name"
    ).fetchall()
    assert len(got) == len(expected) >= 5
    assert [tuple(r) for r in got] == [tuple(r) for r in expected], (
        "dates, Cyrillic text and numerics round-trip"
    )
    assert "Высокая цена" in {r[1] for r in got}
    visible = cursor.execute(
        "select distinct table_schema from information_schema.tables "
        "where table_schema not in ('pg_catalog', 'information_schema')"
    ).fetchall()
    assert {r[0] for r in visible} == {"marts"}, "the BI role sees the marts only"


def test_the_documented_dsn_settings(report_target: Target, odbc) -> None:
    """docs/excel.md: local wall-clock times and real booleans for Excel."""
    settings = ";ConnSettings={SET TimeZone='Europe/Moscow'};BoolsAsChar=0"
    conn = pyodbc.connect(connection_string(report_target) + settings, timeout=15, autocommit=True)
    try:
        closed_at, via_refusal = (
            conn.cursor()
            .execute(
                "select closed_at, passed_conditional_refusal from marts.fct_lost_deals where deal_key = 'amo_retail:4'"
            )
            .fetchone()
        )
    finally:
        conn.close()
    assert closed_at == datetime(2025, 3, 9, 12, 0), "12:00 in Moscow, as the CRM shows it"
    assert via_refusal is True


@pytest.mark.parametrize(
    "statement",
    [
        "select record from raw_amocrm.leads_probe",
        "select * from ops.extract_cursors",
        "insert into marts.rpt_loss_by_reason (loss_reason_name) values ('x')",
        "create table marts.scratch (id int)",
        "create temporary table scratch (id int)",
    ],
)
def test_the_bi_role_is_denied_raw_data_and_writes(odbc, statement: str) -> None:
    with pytest.raises(pyodbc.Error) as denied:
        odbc.cursor().execute(statement).fetchall()
    assert re.search(r"permission denied", str(denied.value)), str(denied.value)
