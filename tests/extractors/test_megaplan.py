"""The Megaplan extractor against the API v3 stand-in over real HTTP on loopback, landing in the
session's warehouse. Each test uses its own connection name, so tests never see each other's
rows. The world is the hand-built one of ``sandbox.megaplan.fixtures``."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from dwh.config.models import MegaplanSource
from dwh.warehouse import Target
from extractors.common.errors import CredentialError
from extractors.common.run import RunReport
from extractors.common.runner import run_connection
from extractors.megaplan import ENTITIES, extract
from extractors.megaplan.client import MegaplanClient
from extractors.megaplan.records import DEAL_FIELDS
from sandbox.megaplan import MegaplanStandIn
from sandbox.megaplan.fixtures import SOURCE, build_world, evolve
from sandbox.megaplan.query import parse_params
from sandbox.standin import Faults, Request, Response
from sandbox.world.model import World

DEALS = 160  # about 155 live deals: two pages of the deal collection
_names = itertools.count()
HTTP = httpx.Client(timeout=10)


# -- fixtures and helpers --------------------------------------------------------------------
@pytest.fixture
def world() -> World:
    return build_world(seed=5, deals=DEALS)


def start(standin: MegaplanStandIn, monkeypatch: pytest.MonkeyPatch) -> MegaplanStandIn:
    standin.start()
    for k, v in standin.credentials().items():
        monkeypatch.setenv(k, v)
    return standin


@pytest.fixture
def account(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[MegaplanStandIn]:
    standin = start(MegaplanStandIn(world, SOURCE, requests_per_second=None), monkeypatch)
    yield standin
    standin.stop()


@pytest.fixture
def conn(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        yield c


def source_for(standin: MegaplanStandIn, password: bool = False, **options: Any) -> MegaplanSource:
    """A connection of its own (a fresh name) pointed at the stand-in."""
    auth = (
        {"username": "${MEGAPLAN_USER}", "password": "${MEGAPLAN_PASSWORD}"}
        if password
        else {"app_token": "${MEGAPLAN_TOKEN}"}
    )
    return MegaplanSource(
        name=f"megaplan_test_{next(_names)}", type="megaplan", base_url=standin.url, auth=auth, **options
    )


def fast_client(source: MegaplanSource, **options: Any) -> MegaplanClient:
    """A client whose limiter and backoff do not slow the tests (the limit has its own test);
    Retry-After is honoured but the wait is compressed."""
    return MegaplanClient(
        source, requests_per_second=2000, burst=100, backoff_base=0.01, backoff_cap=0.05, seed=1,
        sleep=lambda s: time.sleep(min(s, 0.005)), **options,
    )  # fmt: skip


def run(
    source: MegaplanSource, conn: psycopg.Connection, mode: str = "incremental", client: Any = None
) -> RunReport:
    report = RunReport(connection=source.name, system="megaplan", mode=mode)  # type: ignore[arg-type]
    with client or fast_client(source) as c:
        extract(source, conn, mode, report, client=c)  # type: ignore[arg-type]
    return report


def api(standin: MegaplanStandIn, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every item of a collection as the account serves it now (plain requests, not the extractor)."""
    items: list[Any] = []
    anchor = None
    while True:
        query = dict(params or {}, limit=100, **({"pageAfter": anchor} if anchor else {}))
        response = HTTP.get(
            f"{standin.url}/api/v3/{path}?{quote(json.dumps(query), safe='')}",
            headers={"Authorization": f"Bearer {standin.account.app_token}"},
        )
        response.raise_for_status()
        data = response.json()["data"]
        items += data
        if len(data) < 100:
            return items
        anchor = {"contentType": data[-1]["contentType"], "id": data[-1]["id"]}


def served(standin: MegaplanStandIn) -> dict[str, dict[str, Any]]:
    """entity -> landing id -> the record the account serves now."""
    fields = [f["name"] for f in api(standin, "deal/extraFields")]
    deals = api(standin, "deal", {"fields": [*DEAL_FIELDS, *fields]})
    programs = api(standin, "program", {"withInactivePrograms": True, "fields": ["name", "states"]})
    out: dict[str, dict[str, Any]] = {
        "deal_fields": {f["id"]: f for f in api(standin, "deal/extraFields")},
        "programs": {p["id"]: p for p in programs},
        "program_states": {s["id"]: s for p in programs for s in api(standin, f"program/{p['id']}/states")},
        "employees": {e["id"]: e for e in api(standin, "employee", {"fields": [
            "name", "firstName", "middleName", "lastName", "position", "department", "isWorking", "contactInfo"]})},
        "contractor_companies": {c["id"]: c for c in api(standin, "contractorCompany", {"fields": [
            "name", "payers", "contactInfo", "timeCreated", "timeUpdated"]})},
        "deals": {d["id"]: d for d in deals},
        "status_history": {},
        "comments": {},
    }  # fmt: skip
    for deal in deals:
        for row in api(standin, f"deal/{deal['id']}/statusHistory"):
            out["status_history"][f"{deal['id']}|{row['id']}"] = row
        for item in api(standin, f"deal/{deal['id']}/comments"):
            if item["contentType"] == "Comment":
                out["comments"][f"{deal['id']}|{item['id']}"] = item
    return out


def landed(
    conn: psycopg.Connection, source: MegaplanSource, entity: str, deleted: bool = False
) -> dict[str, Any]:
    rows = conn.execute(
        f"select id, record from raw_megaplan.{entity} where connection_name = %s and is_deleted = %s",
        (source.name, deleted),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def assert_lands_what_is_served(
    conn: psycopg.Connection, source: MegaplanSource, standin: MegaplanStandIn
) -> None:
    expected = served(standin)
    assert set(expected) == set(ENTITIES)
    for entity, records in expected.items():
        assert records, f"{entity}: the account serves nothing, the comparison would prove nothing"
        got = landed(conn, source, entity)
        assert set(got) == set(records), f"{entity}: ids differ"
        different = [k for k in records if got[k] != records[k]]
        assert not different, f"{entity}: {len(different)} records differ, e.g. {different[:3]}"
    return expected


def pages(n: int, size: int = 100) -> int:
    """Requests a paged read of n items takes: a short page ends it (an empty one if n divides)."""
    return n // size + 1


def quiet_cost(r: dict[str, dict[str, Any]], password: bool = False) -> int:
    """What a run costs when nothing changed (``r``: what the account serves): one page per small
    collection, the states of each program, the deal collection's pages (plus the login with a
    password)."""
    return (
        int(password) + 1 + 1 + len(r["programs"]) + pages(len(r["employees"]))
        + pages(len(r["contractor_companies"])) + pages(len(r["deals"]))
    )  # fmt: skip


# -- a full extraction -----------------------------------------------------------------------
def test_full_extraction_lands_exactly_what_the_account_serves(
    account: MegaplanStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(account)
    report = run(source, conn, mode="full")

    assert report.error is None and not report.rejects
    expected = assert_lands_what_is_served(conn, source, account)
    live = [d for d in world.deals_of(SOURCE) if d.deleted_at is None]
    deals = landed(conn, source, "deals")
    assert set(deals) == {d.id for d in live}
    assert not {d.id for d in world.deals_of(SOURCE) if d.deleted_at is not None} & set(deals)
    history = landed(conn, source, "status_history")
    state_changes = sum(
        1
        for d in live
        for a, b in itertools.pairwise(sorted(d.moves, key=lambda m: m.at))
        if a.stage_id != b.stage_id
    )
    assert len(history) == state_changes > 0
    assert len(landed(conn, source, "comments")) == sum(len(d.comments) for d in live) > 0
    assert all(r["contentType"] == "Comment" for r in landed(conn, source, "comments").values())
    missing_time = conn.execute(
        "select count(*) from raw_megaplan.deals where connection_name = %s and updated_at is null",
        (source.name,),
    ).fetchone()[0]
    assert missing_time == 0

    # the small collections, then the deal pages, then two requests per deal (history, comments)
    assert report.stats.requests == quiet_cost(expected) + 2 * len(live)
    assert report.cursors["deals"]["deals"] == len(live)


# -- incremental ---------------------------------------------------------------------------
def test_incremental_reads_only_what_changed(
    account: MegaplanStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(account)
    first = run(source, conn)  # nothing landed yet: everything is read
    assert first.error is None
    before = assert_lands_what_is_served(conn, source, account)

    quiet = run(source, conn)
    assert quiet.stats.requests == quiet_cost(before)
    assert sum(quiet.records.values()) == 0 and sum(quiet.deleted.values()) == 0

    with account.lock:
        changes = evolve(world, seed=1)
    after = served(account)
    changed = {e: {k for k, r in after[e].items() if before[e].get(k) != r} for e in after}
    assert changed["deals"] == changes.created | changes.updated
    assert changes.deleted and changes.updated and changes.created

    since = len(account.log)
    report = run(source, conn)
    assert report.error is None
    assert len(account.log) - since == report.stats.requests  # the account saw exactly what was counted
    assert assert_lands_what_is_served(conn, source, account) == after
    assert report.records["deals"] == len(changed["deals"])
    assert report.records["status_history"] == len(changed["status_history"]) > 0
    assert report.records["comments"] == len(changed["comments"]) > 0
    # the quiet cost, two requests per changed deal and one look at each deal gone from the list
    assert report.stats.requests == quiet_cost(after) + 2 * len(changed["deals"]) + len(changes.deleted)

    gone = changes.deleted.pop()
    assert gone in landed(conn, source, "deals", deleted=True)
    gone_children = [k for k in before["status_history"] if k.startswith(f"{gone}|")]
    assert set(gone_children) <= set(landed(conn, source, "status_history", deleted=True))


# -- faults --------------------------------------------------------------------------------
def test_faults_and_token_expiry_are_survived(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(seed=9, error_rate=0.05, truncate_rate=0.03, drop_rate=0.02, burst_every=40, burst_length=3,
                    expire_token_after=60)  # fmt: skip
    standin = start(MegaplanStandIn(world, SOURCE, faults=faults, requests_per_second=None), monkeypatch)
    try:
        source = source_for(standin, password=True)
        with fast_client(source) as client:
            report = run(source, conn, client=client)
            logins = client.logins
        assert report.error is None and not report.rejects
        assert report.stats.retries > 0 and {429, 500} <= set(report.stats.by_status)
        assert report.stats.by_status.get(401, 0) > 0 and logins > 1  # the token died mid-run and was renewed
        standin.faults = Faults()
        expected = assert_lands_what_is_served(conn, source, standin)
        assert run(source, conn).stats.requests == quiet_cost(expected, password=True)  # nothing was missed
    finally:
        standin.stop()


def test_the_limiter_keeps_under_the_pace(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    small = build_world(seed=6, deals=9)
    standin = start(MegaplanStandIn(small, SOURCE), monkeypatch)  # the account's own limit is on
    try:
        source = source_for(standin, requests_per_second=5)
        report = RunReport(connection=source.name, system="megaplan", mode="full")
        with MegaplanClient(source) as client:
            extract(source, conn, "full", report, client=client)
        assert report.error is None and report.stats.requests >= 20
        assert standin.max_requests_in_window(1.0) <= 5
        assert standin.refused == 0 and 429 not in report.stats.by_status
    finally:
        standin.stop()


# -- a run killed midway ---------------------------------------------------------------------
class DyingClient(MegaplanClient):
    """Dies (as a killed process would) after a number of requests."""

    def __init__(self, source: MegaplanSource, after: int):
        super().__init__(source, requests_per_second=2000, burst=100, backoff_base=0.01, seed=1)
        self.left = after

    def get(self, path: str, params: dict[str, Any] | None, what: str) -> dict[str, Any]:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt("killed")
        return super().get(path, params, what)


@pytest.mark.parametrize("after", [12, 260])  # in the small collections; in the second deal page
def test_a_run_killed_midway_and_run_again(
    account: MegaplanStandIn, conn: psycopg.Connection, after: int
) -> None:
    source = source_for(account)
    with pytest.raises(KeyboardInterrupt):
        run(source, conn, client=DyingClient(source, after))
    partial = landed(conn, source, "deals")
    everything = served(account)
    assert 0 < len(partial) < len(everything["deals"]) or after < 20
    history = landed(conn, source, "status_history")
    by_deal = {k.split("|")[0] for k in history}
    # a deal is landed with its history or not at all: never the record without the rows
    expected = everything["status_history"]
    for deal_id in partial:
        rows = {k for k in expected if k.startswith(f"{deal_id}|")}
        assert rows <= set(history) and (not rows or deal_id in by_deal)

    report = run(source, conn)
    assert report.error is None
    assert_lands_what_is_served(conn, source, account)
    duplicates = conn.execute(
        "select count(*) - count(distinct id) from raw_megaplan.status_history where connection_name = %s",
        (source.name,),
    ).fetchone()[0]
    assert duplicates == 0


# -- bad records, dead credentials -------------------------------------------------------------
class TamperedStandIn(MegaplanStandIn):
    """Serves one deal with an unreadable modification time and one record with no id."""

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if request.path.rstrip("/") != "/api/v3/deal" or response.status != 200:
            return response
        body = json.loads(response.body)
        if body["data"] and "pageAfter" not in parse_params(request.raw_query):  # the first page
            body["data"][0]["timeUpdated"] = {"contentType": "DateTime", "value": "вчера"}
            body["data"].insert(1, {"contentType": "Deal", "name": "без номера"})
        return Response.json(200, body)


def test_bad_records_are_rejected_and_the_rest_land(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin = start(TamperedStandIn(world, SOURCE, requests_per_second=None), monkeypatch)
    try:
        source = source_for(standin)
        report = run(source, conn)
        assert report.error is None and report.rejects == {"deals": 2} and report.status == "warning"
        reasons = [r[0] for r in conn.execute(
            "select reason from ops.rejects where connection_name = %s order by reason", (source.name,))]  # fmt: skip
        assert any("timeUpdated is unreadable" in r for r in reasons)
        assert any("without an id" in r for r in reasons)
        live = {d.id for d in world.deals_of(SOURCE) if d.deleted_at is None}
        first = min(live, key=int)
        assert set(landed(conn, source, "deals")) == live - {first}
        assert not any(k.startswith(f"{first}|") for k in landed(conn, source, "status_history"))
    finally:
        standin.stop()


@pytest.mark.parametrize("password", [False, True])
def test_a_dead_credential_gives_one_clear_message(
    account: MegaplanStandIn, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, password: bool
) -> None:
    monkeypatch.setenv("MEGAPLAN_TOKEN" if not password else "MEGAPLAN_PASSWORD", "dead-credential")
    source = source_for(account, password=password)
    with pytest.raises(CredentialError) as caught:
        run(source, conn)
    message = str(caught.value)
    assert message.startswith(f"{source.name}: ")
    assert ("${MEGAPLAN_TOKEN}" if not password else "${MEGAPLAN_PASSWORD}") in message
    assert "dead-credential" not in message
    report = run_connection(source, conn, "incremental")
    assert report.error == message and report.stats.requests <= 2


def test_custom_fields_may_be_named_by_title(account: MegaplanStandIn, conn: psycopg.Connection) -> None:
    named = source_for(account, custom_fields=["Причина отказа"])
    none = source_for(account, custom_fields=["Поле, которого нет"])
    assert run(named, conn).error is None and run(none, conn).error is None
    field_keys = {k for r in landed(conn, named, "deals").values() for k in r if "CustomField" in k}
    assert field_keys == {
        "Category1000011CustomFieldPrichinaOtkaza",
        "Category1000012CustomFieldPrichinaOtkaza",
    }
    assert not any("CustomField" in k for r in landed(conn, none, "deals").values() for k in r)
