"""Idempotent set-up of the warehouse: schemas, the engine's own tables, the BI role."""

from __future__ import annotations

import psycopg
from psycopg import sql

from dwh.warehouse import LAYER_SCHEMAS, SYSTEMS, Target, bi_credentials, connect

OPS_DDL = """
create table if not exists ops.extract_cursors (
    connection_name text not null,
    entity text not null,
    cursor jsonb not null,
    updated_at timestamptz not null default now(),
    primary key (connection_name, entity)
);
create table if not exists ops.extract_runs (
    run_id bigserial primary key,
    connection_name text not null,
    mode text not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    status text not null,
    requests integer not null default 0,
    retries integer not null default 0,
    records integer not null default 0,
    rejects integer not null default 0,
    message text
);
create table if not exists ops.rejects (
    connection_name text not null,
    entity text not null,
    record_id text,
    reason text not null,
    payload jsonb,
    rejected_at timestamptz not null default now()
);
create table if not exists ops.oauth_tokens (
    connection_name text primary key,
    access_token text,
    refresh_token text not null,
    expires_at timestamptz,
    seeded_from text,
    updated_at timestamptz not null default now()
);
alter table ops.oauth_tokens add column if not exists seeded_from text;
"""


def raw_schema(system: str) -> str:
    return f"raw_{system}"


def ensure_schemas(conn: psycopg.Connection) -> None:
    for schema in (*LAYER_SCHEMAS, *(raw_schema(s) for s in SYSTEMS)):
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    conn.execute(OPS_DDL)


def ensure_bi_role(conn: psycopg.Connection) -> str:
    """A login role that reads ``marts`` and nothing else, now and for tables created later."""
    name, password = bi_credentials()
    role = sql.Identifier(name)
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
    if not exists:
        conn.execute(sql.SQL("create role {} login").format(role))
    if password:
        conn.execute(sql.SQL("alter role {} with login password {}").format(role, sql.Literal(password)))
    conn.execute(sql.SQL("revoke all on schema public from {}").format(role))
    conn.execute(sql.SQL("revoke create on schema public from public"))
    db = conn.execute("select current_database()").fetchone()[0]
    conn.execute(sql.SQL("revoke temporary on database {} from public").format(sql.Identifier(db)))
    conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(db), role))
    conn.execute(sql.SQL("grant usage on schema marts to {}").format(role))
    conn.execute(sql.SQL("grant select on all tables in schema marts to {}").format(role))
    # tables dbt creates later, as whoever builds them
    conn.execute(
        sql.SQL("alter default privileges in schema marts grant select on tables to {}").format(role)
    )
    return name


# one key for every idempotent set-up: processes starting together (Dagster's executor runs
# steps in parallel) would otherwise race on "create ... if not exists"
SETUP_LOCK = 7_240_118_503


def setup_lock(conn: psycopg.Connection) -> None:
    """Inside a transaction: wait until no other process is setting the warehouse up."""
    conn.execute("select pg_advisory_xact_lock(%s)", (SETUP_LOCK,))


def bootstrap(tgt: Target | None = None) -> None:
    with connect(tgt, autocommit=True) as conn, conn.transaction():
        setup_lock(conn)
        ensure_schemas(conn)
        ensure_bi_role(conn)
