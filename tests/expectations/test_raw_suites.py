"""The raw suites pass on what the sandbox serves, landed as the extractors land it (the
export files loaded by the file extractor itself), and fail, with the right count and the
offending rows, on tables broken on purpose."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import psycopg
import pytest

from expectations.raw import AMOUNT_CAP, RAW_SUITES, RAW_TABLES, RawTable, number_column, path, time_column
from expectations.runner import Outcome, run_suite
from tests.expectations.support import (  # noqa: F401 - fixtures
    land_more_sources,
    land_world,
    quality_database_url,
    reset_schemas,
    world,
)

NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)  # the sandbox world's clock is 2026-11-01


@pytest.fixture(scope="module")
def landed(
    quality_database_url: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[psycopg.Connection, dict[str, int]]]:
    """Every source system landed once: the sandbox world's amoCRM, Bitrix24 and 1C, the
    stand-ins' fixture worlds of Megaplan, Creatio and RosBiznesSoft, and three days of
    export files. Each test breaks rows inside a transaction that is rolled back afterwards."""
    reset_schemas(quality_database_url)
    with psycopg.connect(quality_database_url) as conn:
        counts = land_world(conn, world())
        counts |= land_more_sources(conn, tmp_path_factory.mktemp("exports"))
        yield conn, counts


@pytest.fixture
def db(landed: tuple[psycopg.Connection, dict[str, int]]) -> Iterator[psycopg.Connection]:
    conn, _ = landed
    yield conn
    conn.rollback()


def failure(outcome: Outcome, meaning_starts: str):
    found = [f for f in outcome.failures if f.meaning.startswith(meaning_starts)]
    assert found, f"expected a failure {meaning_starts!r}, got: {outcome.describe()}"
    return found[0]


def test_every_raw_suite_passes_on_what_the_sandbox_serves(landed) -> None:
    conn, counts = landed
    assert len(RAW_SUITES) == len(RAW_TABLES) == 56
    assert {s for s, _ in RAW_SUITES} == {
        "amocrm",
        "bitrix24",
        "onec",
        "megaplan",
        "creatio",
        "rosbiznessoft",
        "file",
    }
    for (system, entity), suite in RAW_SUITES.items():
        outcome = run_suite(conn, suite, NOW)
        assert counts[f"raw_{system}.{entity}"] > 0, f"the sandbox served no {system} {entity}"
        assert outcome.rows_checked == counts[f"raw_{system}.{entity}"], outcome.describe()
        assert outcome.success, outcome.describe()
        assert not outcome.no_data and outcome.expectations >= 6


def test_a_table_not_landed_yet_passes_with_no_data(db: psycopg.Connection) -> None:
    db.execute("drop table raw_bitrix24.deals")
    outcome = run_suite(db, RAW_SUITES[("bitrix24", "deals")], NOW)
    assert outcome.success and outcome.no_data
    assert outcome.describe().startswith("no data:")


def _ids(db: psycopg.Connection, table: RawTable, n: int) -> list[str]:
    rows = db.execute(
        f"select id from {table.schema}.{table.entity} where not is_deleted order by id limit %s", (n,)
    ).fetchall()
    assert rows, f"{table.schema}.{table.entity} holds no live rows"
    return [r[0] for r in rows]


def _sample_ids(f) -> set[str]:
    return {row["id"] for row in f.sample}


def _set(db: psycopg.Connection, table: RawTable, row_id: str, key: str, json_value: str) -> None:
    db.execute(
        f"update {table.schema}.{table.entity} set record = jsonb_set(record, %s, %s::jsonb) where id = %s",
        (path(key), json_value, row_id),
    )


def _in_record_id(table: RawTable, key: str) -> bool:
    """The record's id is built from ``key``: changing its value changes the id too."""
    rid = table.record_id or ""
    return f"'{key}'" in rid or "{" + ",".join(path(key)) + "}" in rid


ID_KEYS = {"id", "ID", "Id", "Ref_Key", "Сделка_Key", "ЭтапПроцесса_Key", "Валюта_Key", "Period"}
FUTURE = {"unix": "4083825600", "iso": '"2099-06-01T12:00:00+03:00"', "onec": '"2099-06-01T12:00:00"',
          "local": '"2099-06-01T12:00:00"', "rbs": '"2099-06-01 12:00:00"'}  # fmt: skip
ANCIENT = {"unix": "644241600", "iso": '"1990-06-01T12:00:00+03:00"', "onec": '"1990-06-01T12:00:00"',
           "local": '"1990-06-01T12:00:00"', "rbs": '"1990-06-01"'}  # fmt: skip
GARBLED = {"unix": '"yesterday"', "iso": '"02.09.2024 18:37"', "onec": '"02.09.2024"', "local": '"2024-09-02 18:37"',
           "rbs": '"02.09.2024 18:37"'}  # fmt: skip
NEGATIVE = {"number": "-5", "numeric_string": '"-5.00"'}
HUGE = {"number": str(AMOUNT_CAP * 10), "numeric_string": f'"{AMOUNT_CAP * 10}.00"'}
NOT_A_NUMBER = {"number": '"12 000"', "numeric_string": '"12 000,50"'}


@pytest.mark.parametrize("table", RAW_TABLES, ids=lambda t: f"{t.system}.{t.entity}")
def test_broken_rows_are_found_with_their_count_and_ids(db: psycopg.Connection, table: RawTable) -> None:
    """Up to six rows broken: two lose a key every record carries, one has an id that is not
    the record's own, and (where the table has them) a timestamp a century ahead, one before
    2000 and one that does not parse; a negative amount, an absurd one and one that is text.
    A table with fewer than six live rows has some of them broken in more than one way."""
    ids = _ids(db, table, 6)
    row = {i: ids[i % len(ids)] for i in range(6)}
    qualified = f"{table.schema}.{table.entity}"
    checked = table.accepted_types()
    key = next(k for k in table.keys
               if k not in ID_KEYS and k not in checked and not _in_record_id(table, k)
               and not any(c.startswith(f"{k}.") for c in checked))  # fmt: skip
    db.execute(
        f"update {qualified} set record = record #- %s where id = any(%s)", (path(key), [row[0], row[1]])
    )
    for stamp in table.stamps[:1]:
        for i, value in ((3, FUTURE), (4, ANCIENT), (5, GARBLED)):
            _set(db, table, row[i], stamp.key, value[stamp.style])
    for money in table.money[:1]:
        for i, value in ((3, NEGATIVE), (4, HUGE), (5, NOT_A_NUMBER)):
            _set(db, table, row[i], money.key, value[money.style])
    if table.record_id:
        db.execute(f"update {qualified} set id = id || '-other' where id = %s", (row[2],))
    else:
        db.execute(f"update {qualified} set id = 'not a field name' where id = %s", (row[2],))
    renamed = f"{row[2]}-other" if table.record_id else "not a field name"

    def now_known_as(*rows: int) -> set[str]:
        return {renamed if row[i] == row[2] else row[i] for i in rows}

    no_key = now_known_as(0, 1)

    outcome = run_suite(db, RAW_SUITES[(table.system, table.entity)], NOW)

    assert not outcome.success and outcome.severity == "warn"
    missing = failure(outcome, "live records carry the keys")
    assert missing.unexpected_count == len(no_key)
    assert _sample_ids(missing) == no_key and {r["missing_keys"] for r in missing.sample} == {key}
    if table.record_id:
        wrong_id = failure(outcome, "the id column equals the record's own id")
        # a register row's id is built from its values: changing its date changes its id too
        keyed_by_stamp = bool(table.stamps) and _in_record_id(table, table.stamps[0].key)
        changed = {renamed} | (now_known_as(3, 4, 5) if keyed_by_stamp else set())
        assert wrong_id.unexpected_count == len(changed) and _sample_ids(wrong_id) == changed
    else:
        wrong_id = failure(outcome, "id matches")
        assert wrong_id.unexpected_count == 1 and _sample_ids(wrong_id) == {renamed}
    for stamp in table.stamps[:1]:
        plausible = failure(outcome, f"{stamp.key} is between 2000 and a day from now")
        assert plausible.unexpected_count == 2 and _sample_ids(plausible) == now_known_as(3, 4)
        assert {r[time_column(stamp.key)][:4] for r in plausible.sample} == {"2099", "1990"}
        parse = failure(outcome, "timestamps parse")
        assert parse.unexpected_count == 1 and _sample_ids(parse) == now_known_as(5)
        assert parse.sample[0]["bad_timestamps"] == f"{stamp.key}={json.loads(GARBLED[stamp.style])}"
    for money in table.money[:1]:
        plausible = failure(outcome, f"{money.key} is between 0 and")
        assert plausible.unexpected_count == 2 and _sample_ids(plausible) == now_known_as(3, 4)
        assert sorted(r[number_column(money.key)] for r in plausible.sample) == [-5.0, AMOUNT_CAP * 10]
        parse = failure(outcome, "amounts are numbers")
        assert parse.unexpected_count == 1 and _sample_ids(parse) == now_known_as(5)
    expected = {"live records carry the keys", "the id column equals" if table.record_id else "id matches"}
    if table.stamps:
        expected |= {f"{table.stamps[0].key} is between", "timestamps parse"}
        if table.stamps[0].required:  # a value that does not parse leaves the record without one
            expected.add(f"{table.stamps[0].key} is set on live records")
        if table.stamps[0].style == "unix":  # text where Unix seconds belong is the wrong JSON type too
            expected.add("values have the API's JSON types")
    if table.money:
        expected |= {f"{table.money[0].key} is between", "amounts are numbers"}
        if table.money[0].style == "number":  # text where a number belongs is the wrong JSON type too
            expected.add("values have the API's JSON types")
    unexplained = [f.meaning for f in outcome.failures if not any(f.meaning.startswith(e) for e in expected)]
    assert not unexplained, unexplained


def test_a_value_of_the_wrong_type_is_found(db: psycopg.Connection) -> None:
    (row_id,) = _ids(db, next(t for t in RAW_TABLES if t.entity == "leads"), 1)
    db.execute(
        "update raw_amocrm.leads set record = jsonb_set(record, '{status_id}', '\"143\"') where id = %s",
        (row_id,),
    )
    outcome = run_suite(db, RAW_SUITES[("amocrm", "leads")], NOW)
    f = failure(outcome, "values have the API's JSON types")
    assert f.unexpected_count == 1 and f.sample == [
        {"wrong_types": "status_id: string", "connection_name": "amo_retail", "id": row_id}
    ]


def test_deleted_amocrm_leads_need_no_more_than_their_id(db: psycopg.Connection) -> None:
    # what amoCRM serves for a deleted lead (with=only_deleted): its id, when, and the flag
    gone = {"id": 99_000_001, "updated_at": 1_790_000_000, "is_deleted": True, "account_id": 1}
    db.execute(
        "insert into raw_amocrm.leads (connection_name, id, record, is_deleted, deleted_at) "
        "values ('amo_retail', '99000001', %s, true, now())",
        (json.dumps(gone),),
    )
    outcome = run_suite(db, RAW_SUITES[("amocrm", "leads")], NOW)
    assert outcome.success, outcome.describe()


@pytest.mark.parametrize(
    "system, entity",
    [("onec", "users"), ("megaplan", "deals"), ("creatio", "opportunities"), ("rosbiznessoft", "deals"),
     ("file", "deals")],
)  # fmt: skip
def test_duplicate_ids_in_a_table_without_its_key_are_found(
    db: psycopg.Connection, system: str, entity: str
) -> None:
    table = next(t for t in RAW_TABLES if (t.system, t.entity) == (system, entity))
    db.execute(f"alter table {table.schema}.{entity} drop constraint {entity}_pkey")
    (row_id,) = _ids(db, table, 1)
    db.execute(
        f"insert into {table.schema}.{entity} select * from {table.schema}.{entity} where id = %s", (row_id,)
    )
    outcome = run_suite(db, RAW_SUITES[(system, entity)], NOW)
    f = failure(outcome, "(connection_name, id) is unique")
    assert f.unexpected_count == 2 and _sample_ids(f) == {row_id}
    assert [x.meaning for x in outcome.failures] == ["(connection_name, id) is unique"]


def test_a_table_off_the_landing_contract_is_a_problem(db: psycopg.Connection) -> None:
    db.execute("alter table raw_amocrm.users drop column loaded_at")
    outcome = run_suite(db, RAW_SUITES[("amocrm", "users")], NOW)
    assert not outcome.success and outcome.problem and "loaded_at" in outcome.problem
