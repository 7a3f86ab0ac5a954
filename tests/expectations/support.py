"""A private database on the session's warehouse for the quality tests, and the sandbox's
records landed into it as the extractors land them.

The tests point ``DWH_DATABASE_URL`` at the private database, so the product's own
``WarehouseResource`` (the external-server path) reaches it and nothing else sees its tables.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from dwh import server
from dwh.bootstrap import ensure_schemas
from dwh.config.models import FileSource
from dwh.warehouse import Target
from expectations.marts import MART_SUITES
from expectations.raw import RAW_TABLES as RAW_SUITE_TABLES
from extractors.common.runner import run_connection
from sandbox.creatio import fixtures as creatio_fixtures
from sandbox.files import fixtures as file_fixtures
from sandbox.files.render import connection_settings, write_exports
from sandbox.megaplan import fixtures as megaplan_fixtures
from sandbox.rosbiznessoft import fixtures as rbs_fixtures
from sandbox.rosbiznessoft.installation import DEFAULT as RBS_DEFAULT_INSTALLATION
from sandbox.world.generate import generate
from sandbox.world.model import World
from tests.dbt.landing import RAW_TABLES
from tests.dbt.world_landing import land_connection

DATABASE = "quality_checks"
MORE_SYSTEMS = ("megaplan", "creatio", "rosbiznessoft", "file")
SCHEMAS = ("raw_amocrm", "raw_bitrix24", "raw_onec", *(f"raw_{s}" for s in MORE_SYSTEMS), "marts")


@pytest.fixture(scope="session")
def quality_database_url(warehouse: Target) -> str:
    """A fresh database on the session's server, reached over TCP like an external one."""
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
        conn.execute(f"drop database if exists {DATABASE} with (force)")
        conn.execute(f"create database {DATABASE}")
    embedded = server.embedded_server()
    url = embedded.tcp_url(password=embedded.admin_password())
    return url.rsplit("/", 1)[0] + f"/{DATABASE}"


@pytest.fixture
def quality_db(quality_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """The private database, emptied of raw tables and marts, set as the warehouse."""
    monkeypatch.setenv("DWH_DATABASE_URL", quality_database_url)
    reset_schemas(quality_database_url)
    with psycopg.connect(quality_database_url) as conn:
        yield conn


def reset_schemas(url: str) -> None:
    """No raw table and no mart: each test lands what it needs."""
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in SCHEMAS:
            conn.execute(f"drop schema if exists {schema} cascade")
            conn.execute(f"create schema {schema}")


def world(deals: int = 90) -> World:
    return generate(seed=11, deals=deals)


def _counts(conn: psycopg.Connection, systems: tuple[str, ...]) -> dict[str, int]:
    """Rows in every raw table of ``systems`` that the raw suites check."""
    counts = {}
    for table in RAW_SUITE_TABLES:
        if table.system in systems:
            query = f'select count(*) from "{table.schema}"."{table.entity}"'
            counts[f"{table.schema}.{table.entity}"] = conn.execute(query).fetchone()[0]
    conn.commit()
    return counts


def land_world(
    conn: psycopg.Connection, w: World, systems: tuple[str, ...] = ("amocrm", "bitrix24", "onec")
) -> dict:
    """Every raw table of ``systems``, landed with what the sandbox serves. Returns the counts."""
    for source in w.sources:
        if source.system in systems:
            land_connection(conn, w, source.system, source.name)
    counts = _counts(conn, systems)
    assert set(counts) == {f"raw_{s}.{e}" for s in systems for e in RAW_TABLES[s]}
    return counts


def land_more_sources(
    conn: psycopg.Connection, folder: Path, systems: tuple[str, ...] = MORE_SYSTEMS
) -> dict:
    """Megaplan, Creatio and RosBiznesSoft: their stand-ins' fixture worlds rendered as the APIs
    serve them and landed as the extractors land them. Export files: three days of a file
    connection's exports (deals and stage history) written to ``folder`` and loaded by the file
    extractor itself. Returns the row count of every raw table of ``systems``."""
    if "megaplan" in systems:
        land_connection(conn, megaplan_fixtures.build_world(), "megaplan", megaplan_fixtures.SOURCE)
    if "creatio" in systems:
        land_connection(conn, creatio_fixtures.build_world(), "creatio", creatio_fixtures.SOURCE)
    if "rosbiznessoft" in systems:
        land_connection(conn, rbs_fixtures.build_world(), "rosbiznessoft", rbs_fixtures.SOURCE,
                        installation=RBS_DEFAULT_INSTALLATION)  # fmt: skip
    if "file" in systems:
        exports = file_fixtures.build_world()
        source = FileSource.model_validate({**connection_settings(folder), "name": file_fixtures.SOURCE})
        ensure_schemas(conn)  # the extractor's run log and rejects live in ops
        conn.commit()
        conn.autocommit = True  # the extractor commits a transaction per file
        try:
            for day in range(3):
                if day:
                    rbs_fixtures.change_world(exports, hours=24, seed=day)
                write_exports(exports, file_fixtures.SOURCE, folder)
                report = run_connection(source, conn, "incremental")
                assert report.error is None and not report.rejects, (report.error, report.rejects)
        finally:
            conn.autocommit = False
    return _counts(conn, systems)


GOOD_MARTS = """
create table {s}.fct_deals (
    deal_key text, source_name text, source_system text, deal_id text, deal_name text, status text,
    amount numeric(18, 2), currency text, amount_base numeric(18, 2), created_at timestamptz,
    closed_at timestamptz, cycle_days numeric, crm_url text
);
insert into {s}.fct_deals values
    ('amo_retail:1', 'amo_retail', 'amocrm', '1', 'Поставка 1', 'open', 100, 'RUB', 100, '2026-08-01', null, null,
     'http://amo/leads/detail/1'),
    ('amo_retail:2', 'amo_retail', 'amocrm', '2', 'Поставка 2', 'won', 200, 'RUB', 200, '2026-08-02', '2026-09-01', 30,
     'http://amo/leads/detail/2'),
    ('amo_retail:3', 'amo_retail', 'amocrm', '3', 'Поставка 3', 'lost', 300, 'RUB', 300, '2026-08-03', '2026-09-10', 38,
     'http://amo/leads/detail/3'),
    ('b24_wholesale:4', 'b24_wholesale', 'bitrix24', '4', 'Опт 4', 'lost', 0, 'RUB', 0, '2026-09-01', '2026-10-05', 34,
     'http://b24/crm/deal/details/4/'),
    ('erp:5', 'erp', 'onec', '5', 'Ключевой 5', 'lost', 50.5, 'USD', 4848, '2026-08-20', '2026-09-15', 26, null),
    ('erp:6', 'erp', 'onec', '6', 'Ключевой 6', 'won', 10, 'RUB', 10, '2026-08-21', '2026-09-16', 26, null);
create table {s}.fct_lost_deals (
    deal_key text, lost_at_canonical_stage text, manager_key text, loss_reason_code text, amount_base numeric(18, 2),
    cycle_days numeric, customer_key text, crm_url text
);
insert into {s}.fct_lost_deals values
    ('amo_retail:3', 'proposal', 'm01', 'price', 300, 38, 'inn:7701234567', 'http://amo/leads/detail/3'),
    ('b24_wholesale:4', 'proposal', 'm05', 'no_budget', 0, 34, 'inn:7707654321', 'http://b24/crm/deal/details/4/'),
    ('erp:5', 'contract', 'm02', 'price', 4848, 26, 'inn:7701234567', null);
create table {s}.fct_stage_transitions (
    deal_key text, from_stage text, to_stage text, transitioned_at timestamptz, hours_in_from_stage numeric,
    manager_key text
);
insert into {s}.fct_stage_transitions values
    ('amo_retail:3', 'Новая', 'КП', '2026-08-05', 48, 'm01'),
    ('amo_retail:3', 'КП', 'Закрыто', '2026-09-10', 864, 'm01'),
    ('erp:5', 'Первичный контакт', 'Договор', '2026-09-01', 300, 'm02'),
    ('amo_retail:2', 'Новая', 'Успешно', '2026-09-01', 720, 'm01');
create table {s}.rpt_loss_by_stage (
    month date, canonical_stage text, lost_deals integer, lost_deals_share numeric, lost_amount_base numeric,
    lost_amount_share numeric
);
insert into {s}.rpt_loss_by_stage values
    ('2026-09-01', 'proposal', 1, 0.5, 300, 0.0583),
    ('2026-09-01', 'contract', 1, 0.5, 4848, 0.9417),
    ('2026-10-01', 'proposal', 1, 1.0, 0, null);
create table {s}.rpt_loss_by_reason (
    month date, loss_reason_code text, loss_reason_name text, lost_deals integer, lost_deals_share numeric,
    lost_amount_base numeric, lost_amount_share numeric
);
insert into {s}.rpt_loss_by_reason values
    ('2026-09-01', 'price', 'Дорого', 2, 1.0, 5148, 1.0),
    ('2026-10-01', 'no_budget', 'Нет бюджета', 1, 1.0, 0, null);
create table {s}.rpt_loss_by_manager (
    month date, manager_key text, manager_name text, closed_deals integer, lost_deals integer, loss_rate numeric,
    lost_amount_base numeric, share_of_all_losses numeric
);
insert into {s}.rpt_loss_by_manager values
    ('2026-09-01', 'm01', 'Иванов Иван', 2, 1, 0.5, 300, 0.3333),
    ('2026-09-01', 'm02', 'Сидоров Пётр', 2, 1, 0.5, 4848, 0.3333),
    ('2026-09-01', 'm09', 'Морозов Сергей', 1, 1, 1.0, 0, 0.3334),
    ('2026-10-01', 'm05', 'Кузнецов Алексей', 1, 1, 1.0, 0, 1.0),
    ('2026-11-01', 'm05', 'Кузнецов Алексей', 1, 0, 0.0, 0, null);
create table {s}.rpt_funnel_conversion (
    week text, manager_key text, canonical_stage text, reached_stage integer, reached_next_stage integer,
    conversion_rate numeric, target_rate numeric, gap numeric
);
insert into {s}.rpt_funnel_conversion values
    ('2026-W35', 'm01', 'new', 10, 8, 0.8, 0.9, -0.1),
    ('2026-W35', 'm01', 'proposal', 8, 2, 0.25, 0.5, -0.25),
    ('2026-W36', 'm02', 'new', 0, 0, null, 0.9, null);
create table {s}.rpt_customer_history (
    customer_key text, customer_name text, first_deal_at timestamptz, relationship_days numeric, won_deals integer,
    lost_deals integer, avg_cycle_days_won numeric, avg_cycle_days_lost numeric
);
insert into {s}.rpt_customer_history values
    ('inn:7701234567', 'ООО Ромашка', '2026-08-03', 90, 0, 2, null, 32),
    ('inn:7707654321', 'АО Вектор', '2026-09-01', 60, 1, 1, 26, 34);
create table {s}.dq_lost_deal_issues (
    deal_key text, issue_type text, manager_name text, crm_url text, first_detected_at timestamptz,
    resolved_at timestamptz
);
insert into {s}.dq_lost_deal_issues values
    ('amo_retail:3', 'missing_comment', 'Иванов Иван', 'http://amo/leads/detail/3', '2026-09-11', null),
    ('amo_retail:3', 'lost_too_fast', 'Иванов Иван', 'http://amo/leads/detail/3', '2026-09-11', null),
    ('erp:5', 'missing_reason', 'Сидоров Пётр', null, '2026-09-16', '2026-09-20'),
    ('amo_retail:77', 'missing_reason', 'Иванов Иван', 'http://amo/leads/detail/77', '2026-06-01', '2026-06-02');
"""


def build_good_marts(conn: psycopg.Connection, schema: str = "marts") -> None:
    """Small marts that keep every invariant (a deleted deal's fixed issue included)."""
    conn.execute(GOOD_MARTS.replace("{s}", schema))
    conn.commit()


@dg.multi_asset(
    specs=[dg.AssetSpec(["marts", m], skippable=True) for m in MART_SUITES],
    name="marts_as_built",
    can_subset=True,
)
def marts_as_built(context: dg.AssetExecutionContext):
    """Stands in for dbt: the marts are already in the warehouse, this only reports them."""
    for key in context.selected_asset_keys:
        yield dg.MaterializeResult(asset_key=key)
