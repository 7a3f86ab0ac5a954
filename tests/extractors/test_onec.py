"""The 1C extractor against the OData stand-in over real HTTP on loopback, landing in the
session's warehouse. Each test uses its own connection name, so tests never see each
other's rows."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

from dwh.config.models import OneCSource
from dwh.warehouse import Target
from extractors.common.errors import CredentialError, ExtractError
from extractors.common.http import Response
from extractors.common.run import RunReport
from extractors.common.runner import run_connection
from extractors.onec import ENTITIES, extract
from extractors.onec.client import OneCClient
from extractors.onec.sets import (
    ALL_SETS,
    CATALOGS,
    DEAL_STAGE_STATS,
    DEALS,
    Catalog,
    Register,
)
from sandbox.onec import OneCStandIn
from sandbox.standin import Faults
from sandbox.world.advance import advance
from sandbox.world.generate import generate
from sandbox.world.model import Move, World

SEED = 5
WORLD_DEALS = 800  # about 220 of them in the 1C base
STANDIN_SOURCE = "erp"
_names = itertools.count()


# -- fixtures and helpers --------------------------------------------------------------------
@pytest.fixture
def world() -> World:
    return generate(SEED, WORLD_DEALS)


@pytest.fixture
def standin(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[OneCStandIn]:
    base = OneCStandIn(world, STANDIN_SOURCE)
    base.start()
    for k, v in base.credentials().items():
        monkeypatch.setenv(k, v)
    yield base
    base.stop()


@pytest.fixture
def conn(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        yield c


def source_for(base: OneCStandIn, page_size: int = 200) -> OneCSource:
    """A connection of its own (a fresh name) pointed at the stand-in."""
    return OneCSource(
        name=f"onec_test_{next(_names)}",
        type="onec",
        base_url=base.base_url,
        username="${ONEC_USER}",
        password="${ONEC_PASSWORD}",
        page_size=page_size,
    )


def fast_client(source: OneCSource, **options: Any) -> OneCClient:
    """A client whose limiter and backoff do not slow the tests (the limit has its own test)."""
    return OneCClient(
        source, requests_per_second=2000, burst=100, backoff_base=0.01, backoff_cap=0.05, seed=1, **options
    )


def run(source: OneCSource, conn: psycopg.Connection, mode: str = "incremental", **options: Any) -> RunReport:
    report = RunReport(connection=source.name, system="onec", mode=mode)  # type: ignore[arg-type]
    with fast_client(source, **options) as client:
        extract(source, conn, mode, report, client=client)  # type: ignore[arg-type]
    return report


def served(base: OneCStandIn, entity_set: Catalog | Register) -> dict[str, dict[str, Any]]:
    """What the base serves now, read in one plain request (not through the extractor)."""
    user, password = base.credentials().values()
    response = httpx.get(
        f"{base.base_url}/{entity_set.set_name}", params={"$format": "json"}, auth=(user, password)
    )
    response.raise_for_status()
    rows = response.json()["value"]
    if isinstance(entity_set, Register):
        return {entity_set.record_id(r): r for r in rows}
    return {r["Ref_Key"]: r for r in rows}


def landed(
    conn: psycopg.Connection, source: OneCSource, entity: str, deleted: bool = False
) -> dict[str, Any]:
    rows = conn.execute(
        f"select id, record from raw_onec.{entity} where connection_name = %s and is_deleted = %s",
        (source.name, deleted),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def assert_lands_what_is_served(conn: psycopg.Connection, source: OneCSource, base: OneCStandIn) -> None:
    for entity_set in ALL_SETS:
        expected = served(base, entity_set)
        assert expected, f"{entity_set.set_name} serves nothing: the comparison would prove nothing"
        got = landed(conn, source, entity_set.entity)
        assert set(got) == set(expected), f"{entity_set.entity}: ids differ"
        different = [k for k in expected if got[k] != expected[k]]
        assert not different, f"{entity_set.entity}: {len(different)} records differ, e.g. {different[:3]}"


def catalog_pages(n: int, page_size: int) -> int:
    """Requests a paged read of n records takes: a short page ends it (an empty one if n divides)."""
    return n // page_size + 1


def requests_seen(base: OneCStandIn, since: int) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in base.log[since:]]


# -- a full extraction -----------------------------------------------------------------------
def test_full_extraction_lands_exactly_what_the_base_serves(
    standin: OneCStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin, page_size=100)
    report = run(source, conn, mode="full")

    assert report.error is None and not report.rejects
    assert_lands_what_is_served(conn, source, standin)
    deals = landed(conn, source, "deals")
    assert set(deals) == {d.id for d in world.deals_of(STANDIN_SOURCE)}
    marked = {d.id for d in world.deals_of(STANDIN_SOURCE) if d.deleted_at is not None}
    assert marked, "the world should hold deals deleted in 1C (DeletionMark)"
    assert {k for k, r in deals.items() if r["DeletionMark"]} == marked  # landed as served, not deleted
    stats = landed(conn, source, "deal_stage_stats")
    assert all(k == f"{r['Сделка_Key']}|{r['ЭтапПроцесса_Key']}" for k, r in stats.items())
    assert any(r["ДатаОкончания"] == "0001-01-01T00:00:00" for r in stats.values())  # empty dates as served
    rates = landed(conn, source, "exchange_rates")
    assert all(k == f"{r['Валюта_Key']}|{r['Period']}" for k, r in rates.items())
    assert conn.execute(
        "select count(*) from raw_onec.deals where connection_name = %s and updated_at is not null", (source.name,)
    ).fetchone()[0] == 0  # fmt: skip

    # one service document, then every set paged once: the fewest requests $top/$skip paging allows
    expected = 1 + sum(catalog_pages(len(served(standin, s)), source.page_size) for s in ALL_SETS)
    assert report.stats.requests == expected
    assert report.cursors["deals"]["records"] == len(deals)


# -- incremental ---------------------------------------------------------------------------
def test_no_change_and_one_percent_change_incremental_runs(
    standin: OneCStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    first = run(source, conn)  # nothing landed yet: the first incremental run reads everything
    assert first.error is None
    assert_lands_what_is_served(conn, source, standin)

    quiet = run(source, conn)
    # the service document, one page of keys per catalog, one request for recent register rows,
    # one for recent exchange rates
    assert quiet.stats.requests == 1 + len(CATALOGS) + 1 + 1
    assert sum(quiet.records.values()) == 0 and sum(quiet.deleted.values()) == 0

    before = {s.entity: served(standin, s) for s in ALL_SETS}
    with standin.lock:
        changes = advance(world, 1, seed=11)
    after = {s.entity: served(standin, s) for s in ALL_SETS}
    changed = {e: {k for k, r in after[e].items() if before[e].get(k) != r} for e in after}
    deals_changed = changed["deals"]
    assert deals_changed == set(changes.ids(STANDIN_SOURCE))
    assert 0 < len(deals_changed) <= 15  # about 1% of the base: one request by keys is enough

    since = len(standin.log)
    report = run(source, conn)
    assert report.error is None
    assert len(standin.log) - since == report.stats.requests  # the base saw exactly what was counted
    assert_lands_what_is_served(conn, source, standin)
    assert report.records["deals"] == len(deals_changed)
    assert report.records["deal_stage_stats"] == len(changed["deal_stage_stats"]) > 0
    assert report.records["exchange_rates"] == len(changed["exchange_rates"]) > 0
    catalogs_changed = sum(1 for c in CATALOGS if changed[c.entity])
    # the no-change cost, plus one request by keys per changed catalog, plus one for the register
    # rows of the changed deals
    assert report.stats.requests == 1 + len(CATALOGS) + 1 + 1 + catalogs_changed + 1


def test_stage_rows_that_change_without_their_deal_are_found(
    standin: OneCStandIn, world: World, conn: psycopg.Connection
) -> None:
    """A deal stepped back a stage and returned between two runs: its own record (and its
    DataVersion) is unchanged, but the register rows of both stages were rewritten."""
    source = source_for(standin)
    run(source, conn)
    deal = next(
        d
        for d in world.deals_of(STANDIN_SOURCE)
        if d.status == "open" and d.deleted_at is None and len({m.stage_id for m in d.moves}) >= 2
    )
    current, earlier = deal.moves[-1], next(m for m in reversed(deal.moves) if m.stage_id != deal.stage_id)
    record_before = served(standin, DEALS)[deal.id]
    with standin.lock:
        world.now += timedelta(hours=5)
        deal.moves.append(
            Move(world.now - timedelta(hours=3), deal.pipeline_id, earlier.stage_id, current.manager_key)
        )
        deal.moves.append(
            Move(world.now - timedelta(hours=1), deal.pipeline_id, current.stage_id, current.manager_key)
        )
    assert served(standin, DEALS)[deal.id] == record_before

    report = run(source, conn)
    assert report.records.get("deals", 0) == 0
    assert report.records["deal_stage_stats"] == 2
    assert_lands_what_is_served(conn, source, standin)


def test_deletions_incremental_and_after_a_full_reconciliation(
    standin: OneCStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    run(source, conn, mode="full")
    with standin.lock:
        gone = next(d for d in world.deals_of(STANDIN_SOURCE) if d.deleted_at is None and len(d.moves) >= 2)
        world.deals.remove(gone)  # deleted for good (not marked): the key vanishes
        marked = next(d for d in world.deals_of(STANDIN_SOURCE) if d.deleted_at is None)
        marked.deleted_at = world.now  # marked for deletion (DeletionMark)
        old_rate = min(k for k in world.rates if k[0] == "USD")
        del world.rates[old_rate]  # far behind the rates' overlap: only a full read sees it

    report = run(source, conn)
    assert landed(conn, source, "deals", deleted=True).keys() == {gone.id}
    assert landed(conn, source, "deals")[marked.id]["DeletionMark"] is True
    stats_gone = landed(conn, source, "deal_stage_stats", deleted=True)
    assert stats_gone and {r["Сделка_Key"] for r in stats_gone.values()} == {gone.id}
    assert report.deleted == {"deals": 1, "deal_stage_stats": len(stats_gone)}
    assert not landed(conn, source, "exchange_rates", deleted=True)

    full = run(source, conn, mode="full")
    assert full.deleted == {"exchange_rates": 1}
    assert_lands_what_is_served(conn, source, standin)
    assert len(landed(conn, source, "exchange_rates", deleted=True)) == 1


# -- faults, the limiter, a run killed midway ----------------------------------------------------
def test_faults_change_nothing_and_the_limiter_holds(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = OneCStandIn(world, STANDIN_SOURCE)
    faulty = OneCStandIn(
        world,
        STANDIN_SOURCE,
        faults=Faults(
            seed=3, error_rate=0.05, burst_every=25, burst_length=3, truncate_rate=0.04, drop_rate=0.04
        ),
    )
    for base in (clean, faulty):
        base.start()
    for k, v in clean.credentials().items():
        monkeypatch.setenv(k, v)
    try:
        reference = source_for(clean, page_size=100)
        run(reference, conn, mode="full")
        source = source_for(faulty, page_size=100)
        report = RunReport(connection=source.name, system="onec", mode="full")
        # the real limiter; only the backoff is shortened
        with OneCClient(source, backoff_base=0.02, backoff_cap=0.1, seed=2) as client:
            extract(source, conn, "full", report, client=client)
    finally:
        for base in (clean, faulty):
            base.stop()
    assert report.error is None
    assert report.stats.retries >= 4, "the faults should have been met"
    assert {500, 503} <= set(report.stats.by_status)
    for entity in ENTITIES:
        assert landed(conn, source, entity) == landed(conn, reference, entity), entity
    assert faulty.max_requests_in_window(1.0) <= 10


class KilledRun(Exception):
    """The process died: nothing after this point ran."""


class DyingClient(OneCClient):
    """Dies when asked for its ``die_at``-th request, or for the first request of ``die_on``."""

    def __init__(self, source: OneCSource, die_at: int = 0, die_on: str = "", **options: Any):
        super().__init__(
            source, requests_per_second=2000, burst=100, backoff_base=0.01, backoff_cap=0.05, **options
        )
        self.die_at, self.die_on, self.calls = die_at, die_on, 0

    def get(self, set_name: str, options: dict[str, str], what: str) -> Response:
        self.calls += 1
        if self.calls == self.die_at or (self.die_on and set_name == self.die_on):
            raise KilledRun(f"killed at request {self.calls} ({set_name})")
        return super().get(set_name, options, what)


@pytest.mark.parametrize("die_at", [4, 9, 13])
def test_a_run_killed_midway_and_run_again_has_no_gaps_and_no_duplicates(
    standin: OneCStandIn, conn: psycopg.Connection, die_at: int
) -> None:
    source = source_for(standin)
    report = RunReport(connection=source.name, system="onec", mode="incremental")
    with DyingClient(source, die_at=die_at) as client, pytest.raises(KilledRun):
        extract(source, conn, "incremental", report, client=client)
    assert sum(report.records.values()) > 0, "the run should have landed something before it died"
    again = run(source, conn)
    assert again.error is None
    assert_lands_what_is_served(conn, source, standin)
    duplicates = conn.execute(
        "select count(*) - count(distinct id) from raw_onec.deal_stage_stats where connection_name = %s",
        (source.name,),
    ).fetchone()[0]
    assert duplicates == 0


def test_deals_landed_but_their_stage_rows_not_yet_are_read_on_the_next_run(
    standin: OneCStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    run(source, conn)
    with standin.lock:
        advance(world, 3, seed=12)
    report = RunReport(connection=source.name, system="onec", mode="incremental")
    with DyingClient(source, die_on=DEAL_STAGE_STATS.set_name) as client, pytest.raises(KilledRun):
        extract(source, conn, "incremental", report, client=client)
    assert report.records.get("deals", 0) > 0  # the changed deals are in, their register rows not
    assert report.cursors["deal_stage_stats"]["pending_deals"]

    again = run(source, conn)
    assert again.records.get("deals", 0) == 0  # nothing new about the deals themselves
    assert again.records["deal_stage_stats"] > 0
    assert not again.cursors["deal_stage_stats"]["pending_deals"]
    assert_lands_what_is_served(conn, source, standin)


# -- bad records and errors a person must act on -------------------------------------------------
def test_bad_records_are_rejected_with_a_reason_and_the_rest_land(
    standin: OneCStandIn, world: World, conn: psycopg.Connection
) -> None:
    with standin.lock:
        broken = copy.deepcopy(next(d for d in world.deals_of(STANDIN_SOURCE) if len(d.moves) >= 2))
        broken.id = "not-a-guid"
        world.deals.append(broken)
    source = source_for(standin, page_size=1000)
    report = run_connection(source, conn, "full")  # the default client and limiter

    assert report.status == "warning" and report.error is None
    stats_of_broken = len({m.stage_id for m in broken.moves})
    assert report.rejects == {"deals": 1, "deal_stage_stats": stats_of_broken}
    reasons = conn.execute(
        "select entity, record_id, reason, payload from ops.rejects where connection_name = %s order by entity",
        (source.name,),
    ).fetchall()
    assert reasons[-1][0] == "deals" and reasons[-1][1] == "not-a-guid"
    assert "Ref_Key 'not-a-guid' is not a GUID" in reasons[-1][2]
    assert reasons[-1][3]["Description"] == broken.name
    assert all("Сделка_Key 'not-a-guid' is not a GUID" in r[2] for r in reasons[:-1])
    assert len(landed(conn, source, "deals")) == len(world.deals_of(STANDIN_SOURCE)) - 1
    assert (
        len(landed(conn, source, "deal_stage_stats"))
        == len(served(standin, DEAL_STAGE_STATS)) - stats_of_broken
    )


def test_a_dead_password_stops_the_connection_with_one_clear_message(
    standin: OneCStandIn, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEC_PASSWORD", "wrong-password-123")
    source = source_for(standin)
    since = len(standin.log)
    report = run_connection(source, conn, "incremental")
    assert report.status == "failed"
    assert report.error is not None
    assert report.error.startswith(f"{source.name}: 1C refused the user and password")
    assert "${ONEC_USER}" in report.error and "${ONEC_PASSWORD}" in report.error
    assert "wrong-password-123" not in report.error
    assert len(standin.log) - since == 1  # nothing retried, nothing else tried


def test_unpublished_sets_are_a_clear_error_not_an_empty_extract(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    everything_but_stats = [s.set_name for s in ALL_SETS if s is not DEAL_STAGE_STATS]
    for published, expected in (
        (everything_but_stats, "does not publish InformationRegister_СтатистикаСделокСКлиентами"),
        ([], "the OData service document of the 1C base is empty"),
    ):
        base = OneCStandIn(world, STANDIN_SOURCE, published=published)
        base.start()
        for k, v in base.credentials().items():
            monkeypatch.setenv(k, v)
        try:
            source = source_for(base)
            report = run_connection(source, conn, "incremental")
        finally:
            base.stop()
        assert report.status == "failed" and report.error is not None
        assert expected in report.error and "Состав стандартного интерфейса OData" in report.error
        assert sum(report.records.values()) == 0
        assert not landed(conn, source, "deals")


def test_odata_errors_name_the_code_and_the_text(standin: OneCStandIn) -> None:
    source = source_for(standin)
    with fast_client(source) as client, pytest.raises(ExtractError) as bad_property:
        client.get(DEALS.set_name, {"$filter": "НетТакогоРеквизита eq 1"}, "deals")
    elsewhere = source.model_copy(update={"base_url": standin.url + "/trade"})
    with fast_client(elsewhere) as client, pytest.raises(ExtractError) as wrong_url:
        client.get(DEALS.set_name, {}, "deals")
    message = str(bad_property.value)
    assert "odata.error code 10" in message and "НетТакогоРеквизита" in message and "HTTP 400" in message
    assert not isinstance(bad_property.value, CredentialError)
    assert "ending in /odata/standard.odata" in str(wrong_url.value)


def test_request_by_keys_stays_url_sized(standin: OneCStandIn, conn: psycopg.Connection) -> None:
    """Many changed objects are read in several short requests, never one huge URL."""
    source = source_for(standin)
    run(source, conn)
    source = source.model_copy(update={"page_size": 40})  # a full scan: 2 requests; by keys: no more
    conn.execute(
        "update raw_onec.partners set record = jsonb_set(record, '{DataVersion}', '\"stale\"') "
        "where connection_name = %s and id in (select id from raw_onec.partners where connection_name = %s "
        "order by id limit 40)",
        (source.name, source.name),
    )
    since = len(standin.log)
    report = run(source, conn)
    assert report.records["partners"] == 40
    by_keys = [r for r in standin.log[since:] if "Партнеры" in r.path and "$filter" in r.raw_query]
    assert len(by_keys) >= 2
    assert all(len(r.raw_query) <= 2048 for r in by_keys)
    assert_lands_what_is_served(conn, source, standin)
