"""Schemas are created idempotently; the BI role reads marts and nothing else."""

from __future__ import annotations

import psycopg
import pytest

from dwh.bootstrap import bootstrap
from dwh.warehouse import Target, bi_credentials

EXPECTED_SCHEMAS = {
    "config",
    "staging",
    "intermediate",
    "marts",
    "ops",
    "raw_amocrm",
    "raw_bitrix24",
    "raw_onec",
}


def test_schemas_exist_and_bootstrap_is_idempotent(warehouse: Target, db: psycopg.Connection) -> None:
    bootstrap(warehouse)
    bootstrap(warehouse)
    schemas = {r[0] for r in db.execute("select schema_name from information_schema.schemata")}
    assert schemas >= EXPECTED_SCHEMAS


@pytest.fixture
def bi_conn(warehouse: Target, db: psycopg.Connection):
    """Tables in every layer, one of them created after the role; then the BI role over TCP."""
    with db.transaction():
        for schema in ("marts", "raw_amocrm", "config", "staging", "intermediate"):
            db.execute(f"drop table if exists {schema}.bi_probe")
            db.execute(f"create table {schema}.bi_probe as select '{schema}' as layer")
    user, password = bi_credentials()
    assert password, "the embedded warehouse gives the BI role a password"
    conn = psycopg.connect(host="127.0.0.1", port=warehouse.port, dbname=warehouse.dbname, user=user,
                           password=password, autocommit=True)  # fmt: skip
    yield conn
    conn.close()


def test_bi_role_reads_marts_including_tables_created_later(bi_conn: psycopg.Connection) -> None:
    assert bi_conn.execute("select layer from marts.bi_probe").fetchall() == [("marts",)]


@pytest.mark.parametrize("schema", ["raw_amocrm", "config", "staging", "intermediate"])
def test_bi_role_is_denied_elsewhere(bi_conn: psycopg.Connection, schema: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi_conn.execute(f"select * from {schema}.bi_probe")


def test_bi_role_cannot_write_marts(bi_conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi_conn.execute("insert into marts.bi_probe values ('x')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi_conn.execute("create table marts.sneaky (x int)")


def test_bi_role_wrong_password_is_refused(warehouse: Target) -> None:
    user, _ = bi_credentials()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1", port=warehouse.port, dbname=warehouse.dbname, user=user, password="nope"
        )
