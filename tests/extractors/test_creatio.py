"""The Creatio extractor against the OData 4 stand-in over real HTTP on loopback, landing in
the session's warehouse. Each test uses its own connection name, so tests never see each
other's rows; what landed is compared with what the site serves (and the world behind it)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from dwh.config.models import CreatioSource
from dwh.warehouse import Target
from extractors.common.errors import ExtractError
from extractors.common.http import Response
from extractors.common.run import RunReport
from extractors.common.runner import run_connection
from extractors.creatio import ENTITIES, extract
from extractors.creatio.client import CreatioClient
from extractors.creatio.sets import OBJECTS, OPPORTUNITIES, STAGE_HISTORY, USERS, CreatioObject
from sandbox.creatio import LOGIN_PATH, CreatioStandIn
from sandbox.creatio.fixtures import SOURCE, build_world, change_world
from sandbox.standin import Faults
from sandbox.world.model import World

_names = itertools.count()
LOGIN = 1  # every run logs in once (or asks for one token)


# -- fixtures and helpers --------------------------------------------------------------------
@pytest.fixture
def world() -> World:
    return build_world(seed=7, deals=120)


@pytest.fixture
def standin(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[CreatioStandIn]:
    site = CreatioStandIn(world, SOURCE)
    site.start()
    for k, v in site.credentials().items():
        monkeypatch.setenv(k, v)
    yield site
    site.stop()


@pytest.fixture
def conn(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        yield c


def source_for(site: CreatioStandIn, page_size: int = 200, oauth: bool = False, **keys: Any) -> CreatioSource:
    """A connection of its own (a fresh name) pointed at the stand-in."""
    auth: dict[str, Any] = (
        {"client_id": "${CREATIO_CLIENT_ID}", "client_secret": "${CREATIO_CLIENT_SECRET}",
         "identity_url": site.identity_url}
        if oauth
        else {"username": "${CREATIO_USER}", "password": "${CREATIO_PASSWORD}"}
    )  # fmt: skip
    return CreatioSource(
        name=f"creatio_test_{next(_names)}",
        type="creatio",
        base_url=site.base_url,
        page_size=page_size,
        **auth,
        **keys,
    )


FAST: dict[str, Any] = {"requests_per_second": 2000, "burst": 100, "backoff_base": 0.01, "backoff_cap": 0.05}


def run(
    source: CreatioSource, conn: psycopg.Connection, mode: str = "incremental", **options: Any
) -> RunReport:
    report = RunReport(connection=source.name, system="creatio", mode=mode)  # type: ignore[arg-type]
    with CreatioClient(source, **{**FAST, "seed": 1, **options}) as client:
        extract(source, conn, mode, report, client=client)  # type: ignore[arg-type]
    return report


def served(site: CreatioStandIn, obj: CreatioObject) -> dict[str, dict[str, Any]]:
    """What the site serves now, read in one plain request (not through the extractor)."""
    with httpx.Client(base_url=site.url) as http:
        login = http.post(LOGIN_PATH, json={"UserName": site.username, "UserPassword": site.password})
        cookies = dict(c.split(";", 1)[0].split("=", 1) for c in login.headers.get_list("set-cookie"))
        params = {"$filter": obj.base_filter} if obj.base_filter else {}
        response = http.get(
            f"{site.odata_root}/{obj.set_name}",
            params=params,
            headers={
                "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
                "BPMCSRF": cookies["BPMCSRF"],
            },
        )
    response.raise_for_status()
    return {r["Id"]: r for r in response.json()["value"]}


def landed(
    conn: psycopg.Connection, source: CreatioSource, entity: str, deleted: bool = False
) -> dict[str, Any]:
    rows = conn.execute(
        f"select id, record from raw_creatio.{entity} where connection_name = %s and is_deleted = %s",
        (source.name, deleted),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def assert_lands_what_is_served(
    conn: psycopg.Connection, source: CreatioSource, site: CreatioStandIn
) -> None:
    for obj in OBJECTS:
        expected = served(site, obj)
        assert expected, f"{obj.set_name} serves nothing: the comparison would prove nothing"
        got = landed(conn, source, obj.entity)
        assert set(got) == set(expected), f"{obj.entity}: ids differ"
        different = [k for k in expected if got[k] != expected[k]]
        assert not different, f"{obj.entity}: {len(different)} records differ, e.g. {different[:3]}"


def pages(n: int, page_size: int) -> int:
    """Requests a keyset read of n records takes: a short page ends it (an empty one if n divides)."""
    return n // page_size + 1


# -- a full extraction -----------------------------------------------------------------------
def test_full_extraction_lands_exactly_what_the_site_serves(
    standin: CreatioStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin, page_size=100)
    report = run(source, conn, mode="full")

    assert report.error is None and not report.rejects
    assert_lands_what_is_served(conn, source, standin)
    opportunities = landed(conn, source, "opportunities")
    alive = {d.id for d in world.deals_of(SOURCE) if d.deleted_at is None}
    assert set(opportunities) == alive and len(alive) < len(world.deals_of(SOURCE))  # deleted deals: gone
    assert {r["SysAdminUnitTypeValue"] for r in landed(conn, source, "users").values()} == {4}
    assert {r["Amount"] for r in opportunities.values()} >= {
        float(d.amount) for d in world.deals if d.id in alive
    }
    history = landed(conn, source, "stage_history")
    assert any(r["Historical"] for r in history.values()) and any(
        r["StartDate"] == r["DueDate"] for r in history.values()
    )
    with_dates = conn.execute(
        "select count(*) from raw_creatio.opportunities where connection_name = %s and updated_at is not null",
        (source.name,),
    ).fetchone()[0]
    assert with_dates == len(opportunities)  # ModifiedOn is the landed updated_at

    # one login, then every object in keyset pages: the fewest requests $top/$skip paging allows
    expected = LOGIN + sum(pages(len(served(standin, o)), source.page_size) for o in OBJECTS)
    assert report.stats.requests == expected
    assert report.cursors["opportunities"]["rows"] == len(opportunities)


def test_a_net_core_site_with_client_credentials_lands_the_same(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = CreatioStandIn(world, SOURCE, url_form="core", faults=Faults(expire_token_after=4))
    site.start()
    for k, v in site.credentials().items():
        monkeypatch.setenv(k, v)
    try:
        source = source_for(site, oauth=True, odata_root="/odata")
        report = run(source, conn, mode="full")
        extractor_requests = list(site.log)
        assert report.error is None
        assert_lands_what_is_served(conn, source, site)
        odata = [r for r in extractor_requests if r.path.startswith("/odata")]
        assert odata and all(r.headers.get("authorization", "").startswith("Bearer ") for r in odata)
        tokens = [r.path for r in extractor_requests].count("/identity/connect/token")
        # a token serves four requests here: each 401 gets exactly one new token
        assert tokens >= 3 and report.stats.by_status[401] == tokens - 1
        wrong_root = run_connection(source_for(site, oauth=True), conn, "full")  # /0/odata: IIS's 404
    finally:
        site.stop()
    assert wrong_root.status == "failed" and "set odata_root: /odata" in (wrong_root.error or "")


def test_pages_stay_within_the_sites_row_cap(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site whose MaxEntityRowCount is below page_size cuts every page short: the client sees
    it from @odata.count and pages at the site's size instead of stopping early."""
    site = CreatioStandIn(world, SOURCE, max_rows=40)
    site.start()
    for k, v in site.credentials().items():
        monkeypatch.setenv(k, v)
    try:
        source = source_for(site, page_size=200)
        report = run(source, conn, mode="full")
        assert report.error is None
        capped = CreatioStandIn(world, SOURCE)  # the same world without the cap, to compare
        capped.start()
        try:
            for obj in OBJECTS:
                assert set(landed(conn, source, obj.entity)) == set(served(capped, obj)), obj.entity
        finally:
            capped.stop()
    finally:
        site.stop()
    assert len(served_history := landed(conn, source, "stage_history")) > 200
    assert report.cursors["stage_history"]["row_cap"] == 40
    asked = [int(r.arg("$top") or 0) for r in site.log if r.path.endswith("/OpportunityInStage")]
    assert asked[0] == 200 and set(asked[1:]) == {40}  # one cut page, then the site's own size
    assert len(asked) == 1 + (len(served_history) - 40) // 40 + 1


# -- incremental ---------------------------------------------------------------------------
def test_no_change_costs_nine_requests_and_a_working_day_lands_exactly_its_changes(
    standin: CreatioStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    first = run(source, conn)  # nothing landed yet: the first incremental run reads everything
    assert first.error is None
    assert_lands_what_is_served(conn, source, standin)

    quiet = run(source, conn)
    # a login, one request per object, one page of opportunity keys for the deletions
    assert quiet.stats.requests == LOGIN + len(OBJECTS) + 1
    assert sum(quiet.records.values()) == 0 and sum(quiet.deleted.values()) == 0

    before = {o.entity: served(standin, o) for o in OBJECTS}
    with standin.lock:
        changes = change_world(world, hours=24, seed=3)
    after = {o.entity: served(standin, o) for o in OBJECTS}
    assert changes.updated and changes.created and changes.deleted
    changed_deals = {k for k, r in after["opportunities"].items() if before["opportunities"].get(k) != r}
    assert changed_deals == {*changes.created, *changes.updated}
    gone_rows = {k for k, r in before["stage_history"].items() if r["OpportunityId"] in changes.deleted}
    assert gone_rows, "the deleted deal should have had stage rows"

    since = len(standin.log)
    report = run(source, conn)
    assert report.error is None
    # the no-change cost, plus one request by key: a second look at the vanished opportunity
    assert len(standin.log) - since == report.stats.requests == LOGIN + len(OBJECTS) + 1 + 1
    assert_lands_what_is_served(conn, source, standin)
    assert report.records["opportunities"] == len(changed_deals)
    changed_rows = {k for k, r in after["stage_history"].items() if before["stage_history"].get(k) != r}
    assert report.records["stage_history"] == len(changed_rows) > 0
    assert report.deleted == {"opportunities": 1, "stage_history": len(gone_rows)}
    assert set(landed(conn, source, "opportunities", deleted=True)) == set(changes.deleted)


def test_full_reconciliation_finds_what_vanished_from_every_object(
    standin: CreatioStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    run(source, conn, mode="full")
    with standin.lock:
        customer = next(c for c in world.contacts if c.source_name == SOURCE)
        world.contacts.remove(customer)  # deleted in Creatio: nothing changes anywhere else
        reason = world.loss_reasons.pop()

    quiet = run(source, conn)
    assert not quiet.deleted  # an incremental run cannot see a lookup vanish

    full = run(source, conn, mode="full")
    assert full.deleted == {"contacts": 1, "close_reasons": 1}
    assert set(landed(conn, source, "contacts", deleted=True)) == {customer.id}
    assert set(landed(conn, source, "close_reasons", deleted=True)) == {reason.id}
    assert_lands_what_is_served(conn, source, standin)
    assert full.cursors["contacts"]["deleted"] == 1 and "last_full_read" in full.cursors["contacts"]


def test_an_opportunity_changed_while_the_pages_are_read_is_not_skipped(
    standin: CreatioStandIn, world: World, conn: psycopg.Connection
) -> None:
    """Page numbers over a list ordered by ModifiedOn skip a record when one already read is
    changed (it moves to the end, the rest slide back by one); the keyset does not."""
    source = source_for(standin, page_size=20)
    by_time = sorted(served(standin, OPPORTUNITIES).values(), key=lambda r: (r["ModifiedOn"], r["Id"]))
    moved = next(d for d in world.deals if d.id == by_time[5]["Id"])

    class ChangesTheWorldAfterTheFirstPage(CreatioClient):
        def get(self, set_name: str, options: dict[str, str], what: str) -> Response:
            response = super().get(set_name, options, what)
            if (
                set_name == "Opportunity"
                and "$skip" not in options
                and "ModifiedOn" not in options.get("$filter", "")
            ):
                with standin.lock:
                    moved.amount += Decimal(5)
                    moved.updated_at = world.now + timedelta(minutes=1)
            return response

    report = RunReport(connection=source.name, system="creatio", mode="full")
    with ChangesTheWorldAfterTheFirstPage(source, **FAST) as client:
        extract(source, conn, "full", report, client=client)
    assert report.error is None
    assert landed(conn, source, "opportunities")[moved.id]["Amount"] == float(moved.amount)
    assert_lands_what_is_served(conn, source, standin)


# -- faults, the limiter, a run killed midway ----------------------------------------------------
def test_faults_change_nothing_and_the_limiter_holds(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = CreatioStandIn(world, SOURCE)
    faulty = CreatioStandIn(
        world,
        SOURCE,
        faults=Faults(
            seed=3,
            error_rate=0.05,
            burst_every=10,
            burst_length=2,
            truncate_rate=0.05,
            drop_rate=0.04,
            expire_token_after=8,  # the session dies every eight requests: a login mid-run
        ),
    )
    for site in (clean, faulty):
        site.start()
    for k, v in clean.credentials().items():
        monkeypatch.setenv(k, v)
    try:
        reference = source_for(clean, page_size=100)
        run(reference, conn, mode="full")
        source = source_for(faulty, page_size=100)
        report = RunReport(connection=source.name, system="creatio", mode="full")
        # the real limiter (5 a second, no burst); only the backoff is shortened
        with CreatioClient(source, backoff_base=0.02, backoff_cap=0.1, seed=2) as client:
            extract(source, conn, "full", report, client=client)
            logins = client.logins
    finally:
        for site in (clean, faulty):
            site.stop()
    assert report.error is None
    assert report.stats.retries >= 4, "the faults should have been met"
    assert {401, 429, 500, 503} <= set(report.stats.by_status)
    assert logins >= 2 and faulty.logins == logins  # the expired session was replaced, never reused
    for entity in ENTITIES:
        assert landed(conn, source, entity) == landed(conn, reference, entity), entity
    assert faulty.max_requests_in_window(1.0) <= 5


class KilledRun(Exception):
    """The process died: nothing after this point ran."""


class DyingClient(CreatioClient):
    """Dies when asked for its ``die_at``-th page."""

    def __init__(self, source: CreatioSource, die_at: int, **options: Any):
        super().__init__(source, **{**FAST, **options})
        self.die_at, self.calls = die_at, 0

    def get(self, set_name: str, options: dict[str, str], what: str) -> Response:
        self.calls += 1
        if self.calls == self.die_at:
            raise KilledRun(f"killed at request {self.calls} ({set_name})")
        return super().get(set_name, options, what)


@pytest.mark.parametrize("die_at", [3, 8, 11])
def test_a_run_killed_midway_and_run_again_has_no_gaps_and_no_duplicates(
    standin: CreatioStandIn, world: World, conn: psycopg.Connection, die_at: int
) -> None:
    source = source_for(standin, page_size=60)
    report = RunReport(connection=source.name, system="creatio", mode="incremental")
    with DyingClient(source, die_at=die_at) as client, pytest.raises(KilledRun):
        extract(source, conn, "incremental", report, client=client)
    assert sum(report.records.values()) > 0, "the run should have landed something before it died"
    with standin.lock:
        change_world(world, hours=24, seed=die_at)
    again = run(source, conn)
    assert again.error is None
    assert_lands_what_is_served(conn, source, standin)
    duplicates = conn.execute(
        "select count(*) - count(distinct id) from raw_creatio.stage_history where connection_name = %s",
        (source.name,),
    ).fetchone()[0]
    assert duplicates == 0


# -- auth: what a person must act on, and what the client handles alone ------------------------
def test_a_dead_password_stops_the_connection_with_one_clear_message(
    standin: CreatioStandIn, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREATIO_PASSWORD", "wrong-password-123")
    source = source_for(standin)
    since = len(standin.log)
    report = run_connection(source, conn, "incremental")
    assert report.status == "failed" and report.error is not None
    assert report.error.startswith(f"{source.name}: Creatio refused the login")
    assert "${CREATIO_USER}" in report.error and "${CREATIO_PASSWORD}" in report.error
    assert "wrong-password-123" not in report.error
    assert len(standin.log) - since == 1  # nothing retried, nothing else tried


def test_a_dead_client_secret_names_its_variables(
    standin: CreatioStandIn, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREATIO_CLIENT_SECRET", "not-the-secret")
    source = source_for(standin, oauth=True)
    report = run_connection(source, conn, "incremental")
    assert report.status == "failed" and report.error is not None
    assert "invalid_client" in report.error and "${CREATIO_CLIENT_SECRET}" in report.error
    assert "not-the-secret" not in report.error
    assert [r.path for r in standin.log] == ["/identity/connect/token"]


def test_a_refused_bpmcsrf_token_gets_a_fresh_session_once(
    standin: CreatioStandIn, conn: psycopg.Connection
) -> None:
    source = source_for(standin)

    class LosesItsCsrf(CreatioClient):
        def get(self, set_name: str, options: dict[str, str], what: str) -> Response:
            if set_name == "Contact" and self.logins == 1:
                self.auth.cookies["BPMCSRF"] = "stale"  # type: ignore[union-attr]
            return super().get(set_name, options, what)

    report = RunReport(connection=source.name, system="creatio", mode="full")
    with LosesItsCsrf(source, **FAST) as client:
        extract(source, conn, "full", report, client=client)
        assert client.logins == 2
    assert report.error is None and report.stats.by_status.get(403) == 1
    assert_lands_what_is_served(conn, source, standin)
    bare = httpx.get(f"{standin.url}/0/odata/Opportunity", headers={"Cookie": "x=y"})
    assert bare.status_code == 401


# -- bad records and errors ------------------------------------------------------------------------
def test_bad_records_are_rejected_with_a_reason_and_the_rest_land(
    standin: CreatioStandIn, world: World, conn: psycopg.Connection
) -> None:
    with standin.lock:
        broken = copy.deepcopy(next(d for d in world.deals_of(SOURCE) if d.deleted_at is None))
        broken.id = "not-a-guid"
        world.deals.append(broken)
    source = source_for(standin, page_size=1000)
    report = run_connection(source, conn, "full")  # the default client and limiter

    assert report.status == "warning" and report.error is None
    assert report.rejects == {"opportunities": 1}
    reason, payload = conn.execute(
        "select reason, payload from ops.rejects where connection_name = %s and record_id = 'not-a-guid'",
        (source.name,),
    ).fetchone()
    assert "Id 'not-a-guid' is not a GUID" in reason and payload["Title"] == broken.name
    assert len(landed(conn, source, "opportunities")) == len(served(standin, OPPORTUNITIES)) - 1
    assert len(landed(conn, source, "stage_history")) == len(served(standin, STAGE_HISTORY))


def test_unexposed_objects_and_bad_queries_are_named(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = CreatioStandIn(world, SOURCE, exposed=[o.set_name for o in OBJECTS if o is not USERS])
    site.start()
    for k, v in site.credentials().items():
        monkeypatch.setenv(k, v)
    try:
        source = source_for(site)
        report = run_connection(source, conn, "incremental")
        with CreatioClient(source, **FAST) as client, pytest.raises(ExtractError) as bad:
            client.get("Opportunity", {"$select": "НетТакойКолонки"}, "opportunities")
    finally:
        site.stop()
    assert report.status == "failed" and "does not serve SysAdminUnit over OData 4" in (report.error or "")
    assert "Could not find a property named 'НетТакойКолонки'" in str(bad.value) and "HTTP 400" in str(
        bad.value
    )


def test_the_package_lands_the_tables_dagster_declares() -> None:
    from dagster_project.defs.extract.assets import ENTITIES as DECLARED

    assert tuple(DECLARED["creatio"]) == ENTITIES
    assert {o.entity for o in OBJECTS} == set(ENTITIES)
