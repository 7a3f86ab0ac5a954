"""The RosBiznesSoft extractor against the XML API stand-in over real HTTP on loopback, landing
in the session's warehouse. Each test uses its own connection name, so tests never see each
other's rows."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import psycopg
import pytest

from dwh.config.models import RosBiznesSoftSource
from dwh.warehouse import Target
from extractors.common.run import RunReport
from extractors.common.runner import run_connection
from extractors.rosbiznessoft import ENTITIES, extract
from extractors.rosbiznessoft.client import ActionResult, ListAction, RosBiznesSoftClient
from sandbox.rosbiznessoft import EXAMPLE_RENAMED, RosBiznesSoftStandIn
from sandbox.rosbiznessoft.fixtures import build_world, change_world
from sandbox.rosbiznessoft.installation import STRUCTURE_FIELDS
from sandbox.rosbiznessoft.render import render
from sandbox.rosbiznessoft.server import REQUESTS_PER_SECOND
from sandbox.standin import Faults
from sandbox.world.model import World

SOURCE = "rbs"
PAGE = 50
FAST = 10_000  # the stand-in's own limit, raised where the test is not about limits
_names = itertools.count()


# -- fixtures and helpers --------------------------------------------------------------------
@pytest.fixture
def world() -> World:
    return build_world(seed=7, deals=150)


def start(world: World, monkeypatch: pytest.MonkeyPatch, **options: Any) -> RosBiznesSoftStandIn:
    options.setdefault("requests_per_second", FAST)
    standin = RosBiznesSoftStandIn(world, SOURCE, **options)
    standin.start()
    for k, v in standin.credentials().items():
        monkeypatch.setenv(k, v)
    return standin


@pytest.fixture
def standin(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[RosBiznesSoftStandIn]:
    s = start(world, monkeypatch)
    yield s
    s.stop()


@pytest.fixture
def conn(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        yield c


def source_for(standin: RosBiznesSoftStandIn, page_size: int = PAGE, **changes: Any) -> RosBiznesSoftSource:
    """A connection of its own (a fresh name) pointed at the stand-in, with its installation's names."""
    settings = {**standin.connection_settings(), "page_size": page_size, **changes}
    return RosBiznesSoftSource.model_validate({"name": f"rbs_test_{next(_names)}", **settings})


def fast_client(source: RosBiznesSoftSource, **options: Any) -> RosBiznesSoftClient:
    return RosBiznesSoftClient(source, requests_per_second=2000, burst=100, backoff_base=0.01, backoff_cap=0.05,
                               seed=1, **options)  # fmt: skip


def run(source: RosBiznesSoftSource, conn: psycopg.Connection, mode: str = "incremental") -> RunReport:
    report = RunReport(connection=source.name, system="rosbiznessoft", mode=mode)  # type: ignore[arg-type]
    with fast_client(source) as client:
        extract(source, conn, mode, report, client=client)  # type: ignore[arg-type]
    return report


def served(standin: RosBiznesSoftStandIn) -> dict[str, dict[str, dict[str, str]]]:
    """entity -> id -> row, as the installation serves the fields the connection names (read
    straight from the world; the installation's other fields are never asked for)."""
    installation = standin.installation
    with standin.lock:
        structures = render(standin.world, SOURCE, installation)
    by_name = installation.served_structures()
    id_name = installation.field("id")
    out = {}
    for name, rows in structures.items():
        named = {installation.field(m) for m in STRUCTURE_FIELDS[by_name[name]]}
        out[by_name[name]] = {r[id_name]: {k: v for k, v in r.items() if k in named} for r in rows}
    return out


def landed(
    conn: psycopg.Connection, source: RosBiznesSoftSource, entity: str, deleted: bool | None = False
) -> dict[str, Any]:
    rows = conn.execute(
        f"select id, record from raw_rosbiznessoft.{entity} where connection_name = %s "
        "and (%s::boolean is null or is_deleted = %s)",
        (source.name, deleted, deleted),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def binned(standin: RosBiznesSoftStandIn) -> set[str]:
    return {i for i, r in served(standin)["deals"].items() if r[standin.installation.field("visible")] == "0"}


def assert_lands_what_is_served(
    conn: psycopg.Connection, source: RosBiznesSoftSource, standin: RosBiznesSoftStandIn
) -> None:
    """Every served record landed as served; a record landed once and erased since is marked deleted."""
    expected = served(standin)
    for entity in ENTITIES:
        assert expected[entity], f"{entity} serves nothing: the comparison would prove nothing"
        got = landed(conn, source, entity, deleted=None)
        missing = set(expected[entity]) - set(got)
        assert not missing, f"{entity}: {len(missing)} served records not landed, e.g. {sorted(missing)[:3]}"
        different = [k for k, row in expected[entity].items() if got[k]["fields"] != row]
        assert not different, f"{entity}: {len(different)} records differ, e.g. {different[:3]}"
        erased = set(got) - set(expected[entity])
        binned_here = binned(standin) if entity == "deals" else set()
        assert set(landed(conn, source, entity, deleted=True)) == erased | binned_here, entity


def rounds(standin: RosBiznesSoftStandIn, page_size: int) -> int:
    """Requests a full read takes after the login: one per round, as many rounds as the
    longest structure needs pages (a short page ends it, an empty one when the count divides)."""
    return max(len(rows) // page_size + 1 for rows in served(standin).values())


# -- a full extraction -----------------------------------------------------------------------
def test_full_extraction_lands_exactly_what_the_installation_serves(
    standin: RosBiznesSoftStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    report = run(source, conn, mode="full")

    assert report.error is None and not report.rejects
    assert_lands_what_is_served(conn, source, standin)
    deals = landed(conn, source, "deals", deleted=None)
    assert set(deals) == {d.id for d in world.deals}
    assert binned(standin) == {d.id for d in world.deals if d.deleted_at is not None} != set()
    one = world.deals[0]
    values = deals[one.id]["values"]
    assert values["deal_stage"] == one.stage_id and values["deal_amount"] == f"{one.amount:.2f}"
    assert deals[one.id]["structure"] == "documents.deals"
    stages = landed(conn, source, "stages")
    assert {r["values"]["stage_status"] for r in stages.values()} == {"open", "won", "lost"}
    history = landed(conn, source, "stage_history")
    assert len(history) == sum(len(d.moves) for d in world.deals)
    details = landed(conn, source, "company_details")
    inns = {r["values"]["details_inn"] for r in details.values()}
    assert inns == {c.inn_rendered or "" for c in world.companies} and "" in inns
    assert any(i.startswith("ИНН ") for i in inns)  # as the installation spells it
    updated = conn.execute(
        "select count(*) from raw_rosbiznessoft.deals where connection_name = %s and updated_at is null",
        (source.name,),
    ).fetchone()[0]
    assert updated == 0
    # the login, then one request per round: every structure's page travels together
    assert report.stats.requests == 1 + rounds(standin, PAGE)
    assert len(standin.log) == report.stats.requests


# -- incremental -----------------------------------------------------------------------------
def test_no_change_run_costs_two_requests_and_a_working_day_lands_exactly(
    standin: RosBiznesSoftStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    first = run(source, conn)  # nothing landed yet: reads everything
    assert first.error is None
    assert_lands_what_is_served(conn, source, standin)

    quiet = run(source, conn)
    assert quiet.stats.requests == 2  # the login and one request with a page of every structure
    assert sum(quiet.records.values()) == 0 and sum(quiet.deleted.values()) == 0

    before = served(standin)
    with standin.lock:
        changes = change_world(world, hours=24, seed=3)
    after = served(standin)
    changed = {e: {k for k, r in after[e].items() if before[e].get(k) != r} for e in after}
    assert changed["deals"] == {*changes.created, *changes.updated, *changes.deleted}

    report = run(source, conn)
    assert report.error is None
    assert_lands_what_is_served(conn, source, standin)
    for entity, ids in changed.items():
        assert report.records.get(entity, 0) == len(ids), entity
    assert report.records["stage_history"] > 0 and report.records["company_details"] == 1
    assert set(landed(conn, source, "deals", deleted=True)) >= set(changes.deleted)
    assert report.stats.requests == 2  # a day's changes fit in one page of each structure


def test_erased_records_are_marked_deleted_by_a_full_read(
    standin: RosBiznesSoftStandIn, world: World, conn: psycopg.Connection
) -> None:
    source = source_for(standin)
    run(source, conn, mode="full")
    with standin.lock:
        erased = next(d for d in world.deals if d.deleted_at is None and len(d.moves) >= 2)
        world.deals.remove(erased)  # «Стирание»: gone, with its history and comments
        reason = world.loss_reasons.pop()  # a lookup loses a record: seen by every run
    quiet = run(source, conn)
    assert quiet.deleted == {"loss_reasons": 1}
    assert erased.id in landed(conn, source, "deals")  # an incremental read cannot see an erasure

    full = run(source, conn, mode="full")
    assert full.deleted["deals"] == 1 and full.deleted["stage_history"] == len(erased.moves)
    assert full.deleted.get("comments", 0) == len(erased.comments)
    assert erased.id in landed(conn, source, "deals", deleted=True)
    assert reason.id in landed(conn, source, "loss_reasons", deleted=True)
    assert_lands_what_is_served(conn, source, standin)


def test_an_installation_with_its_own_names_lands_the_same_values(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    default, renamed = start(world, monkeypatch), start(world, monkeypatch, installation=EXAMPLE_RENAMED)
    try:
        plain, custom = source_for(default), source_for(renamed)
        assert custom.object_name("deals") == "documents.sdelki" and custom.field_name("deal_stage") == "etap"
        assert custom.stage_results == {"10": "open", "20": "won", "30": "lost"}
        for source in (plain, custom):
            assert run(source, conn, mode="full").error is None
        assert_lands_what_is_served(conn, custom, renamed)
    finally:
        default.stop()
        renamed.stop()
    for entity in ENTITIES:
        a, b = landed(conn, plain, entity, None), landed(conn, custom, entity, None)
        # the same values by meaning; only the result enumeration's numbers are the installation's own
        same = {k: {m: v for m, v in r["values"].items() if m != "stage_result"} for k, r in a.items()}
        assert same == {
            k: {m: v for m, v in r["values"].items() if m != "stage_result"} for k, r in b.items()
        }
    assert next(iter(landed(conn, custom, "deals").values()))["structure"] == "documents.sdelki"


# -- faults, the limiter, sessions, a run killed midway ------------------------------------------
def test_faults_change_nothing_and_the_limiter_keeps_under_the_limit(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = start(world, monkeypatch)
    faults = Faults(seed=5, error_rate=0.05, burst_every=9, burst_length=2, truncate_rate=0.05, drop_rate=0.05,
                    expire_token_after=4)  # fmt: skip
    faulty = start(world, monkeypatch, faults=faults, requests_per_second=REQUESTS_PER_SECOND)
    try:
        reference = source_for(clean, page_size=100)
        run(reference, conn, mode="full")
        source = source_for(faulty, page_size=100)
        report = RunReport(connection=source.name, system="rosbiznessoft", mode="full")
        # the real limiter (the connection's default pace); only the backoff is shortened
        with RosBiznesSoftClient(source, backoff_base=0.05, backoff_cap=0.2, seed=2) as client:
            extract(source, conn, "full", report, client=client)
            logins = client.logins
    finally:
        clean.stop()
        faulty.stop()
    assert report.error is None
    assert report.stats.retries >= 3, "the faults should have been met"
    assert {500, 503} <= set(report.stats.by_status)
    assert logins >= 2 and faulty.logins == logins  # the session died midway and was renewed
    for entity in ENTITIES:
        assert landed(conn, source, entity, None) == landed(conn, reference, entity, None), entity
    assert faulty.max_requests_in_window(1.0) <= REQUESTS_PER_SECOND


def test_a_session_that_expires_is_renewed_with_one_login(
    standin: RosBiznesSoftStandIn, conn: psycopg.Connection
) -> None:
    source = source_for(standin, page_size=20)
    report = RunReport(connection=source.name, system="rosbiznessoft", mode="full")
    with fast_client(source) as client:
        original = client.list_many

        def expiring(actions: Sequence[ListAction], what: str) -> list[ActionResult]:
            if client.stats.requests == 4:
                standin.expire_sessions()  # the server restarted: every session is gone
            return original(actions, what)

        client.list_many = expiring  # type: ignore[method-assign]
        extract(source, conn, "full", report, client=client)
        assert client.logins == 2
    assert report.error is None
    assert_lands_what_is_served(conn, source, standin)


class KilledRun(Exception):
    """The process died: nothing after this point ran."""


class DyingClient(RosBiznesSoftClient):
    def __init__(self, source: RosBiznesSoftSource, die_at: int):
        super().__init__(source, requests_per_second=2000, burst=100, backoff_base=0.01, backoff_cap=0.05)
        self.die_at, self.calls = die_at, 0

    def list_many(self, actions: Sequence[ListAction], what: str) -> list[ActionResult]:
        self.calls += 1
        if self.calls == self.die_at:
            raise KilledRun(f"killed at round {self.calls}")
        return super().list_many(actions, what)


@pytest.mark.parametrize("die_at", [2, 4])
def test_a_run_killed_midway_and_run_again_has_no_gaps_and_no_duplicates(
    standin: RosBiznesSoftStandIn, world: World, conn: psycopg.Connection, die_at: int
) -> None:
    source = source_for(standin, page_size=10)
    run(source, conn)
    with standin.lock:
        for n in range(8):
            change_world(world, hours=24, seed=40 + n)  # more than a page of changes
    report = RunReport(connection=source.name, system="rosbiznessoft", mode="incremental")
    with DyingClient(source, die_at=die_at) as client, pytest.raises(KilledRun):
        extract(source, conn, "incremental", report, client=client)
    assert sum(report.records.values()) > 0, "the run should have landed something before it died"
    again = run(source, conn)
    assert again.error is None
    assert_lands_what_is_served(conn, source, standin)
    for entity in ENTITIES:
        duplicates = conn.execute(
            f"select count(*) - count(distinct id) from raw_rosbiznessoft.{entity} where connection_name = %s",
            (source.name,),
        ).fetchone()[0]
        assert duplicates == 0


# -- bad records and errors a person must act on -------------------------------------------------
def test_bad_records_are_rejected_with_a_reason_and_the_rest_land(
    standin: RosBiznesSoftStandIn, world: World, conn: psycopg.Connection
) -> None:
    deal, stage = world.deals[3], world.pipelines[1].stages[0]
    standin.overrides[("deals", deal.id)] = {"deal_modified": "31.02.2025"}
    standin.overrides[("stages", stage.id)] = {"stage_result": "9"}
    priced = world.deals[5]
    standin.overrides[("deals", priced.id)] = {"deal_amount": "двенадцать тысяч"}
    source = source_for(standin)
    report = run_connection(source, conn, "full")  # the default client and limiter

    assert report.status == "warning" and report.error is None
    assert report.rejects == {"deals": 2, "stages": 1}
    rows = conn.execute(
        "select entity, record_id, reason from ops.rejects where connection_name = %s", (source.name,)
    ).fetchall()
    reasons = {entity: reason for entity, record_id, reason in rows if record_id != priced.id}
    assert [r for _, i, r in rows if i == priced.id] == [
        f"documents.deals {priced.id}: sum (fields.deal_amount) 'двенадцать тысяч' is not a number written 1234.56"
    ]
    assert reasons["deals"] == (
        f"documents.deals {deal.id}: date_modify (fields.deal_modified) '31.02.2025' is not a date written Y-m-d H:i:s"
    )
    assert (
        f"references.deal_stages {stage.id}: result (fields.stage_result) '9' is none of stage_results"
        in reasons["stages"]
        and "add it to stage_results in sources.yaml" in reasons["stages"]
    )
    assert deal.id not in landed(conn, source, "deals", None) and priced.id not in landed(
        conn, source, "deals", None
    )
    assert len(landed(conn, source, "deals", None)) == len(world.deals) - 2


def test_a_wrong_password_stops_the_connection_with_one_clear_message(
    standin: RosBiznesSoftStandIn, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RBS_PASSWORD", "wrong-password-123")
    source = source_for(standin)
    since = len(standin.log)
    report = run_connection(source, conn, "incremental")
    assert report.status == "failed" and report.error is not None
    assert report.error.startswith(f"{source.name}: RosBiznesSoft refused the login")
    assert (
        "${RBS_USER}" in report.error
        and "${RBS_PASSWORD}" in report.error
        and "Неверный логин" in report.error
    )
    assert "wrong-password-123" not in report.error
    assert len(standin.log) - since == 1  # nothing retried, nothing else tried


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"objects": {"deals": "documents.sdelki"}}, ["no structure 'documents.sdelki'", "objects.deals"]),
        ({"objects": {"comments": "documents.notes"}}, ["objects.comments", 'or to "" if the installation']),
        ({"fields": {"deal_stage": "etap"}}, ["has no field 'etap'", "fields.deal_stage", "/configurator"]),
    ],
)
def test_names_the_installation_does_not_have_are_named_in_the_error(
    standin: RosBiznesSoftStandIn, conn: psycopg.Connection, changes: dict[str, Any], expected: list[str]
) -> None:
    source = source_for(standin, **changes)
    report = run_connection(source, conn, "incremental")
    assert report.status == "failed" and report.error is not None
    for fragment in expected:
        assert fragment in report.error, report.error
    assert sum(report.records.values()) == 0


def test_an_installation_without_history_or_comments_is_read_without_them(
    standin: RosBiznesSoftStandIn, conn: psycopg.Connection
) -> None:
    source = source_for(standin, objects={"stage_history": "", "comments": ""}, fields={"deal_comment": ""})
    report = run(source, conn, mode="full")
    assert report.error is None
    assert not landed(conn, source, "stage_history") and not landed(conn, source, "comments")
    assert all("deal_comment" not in r["values"] for r in landed(conn, source, "deals").values())
    asked = [r.body.decode() for r in standin.log]
    assert not any(
        "deal_stage_history" in b or "deal_comments" in b or re.search(r"%3Cdescription", b) for b in asked
    )


def test_the_request_is_the_documented_form_post(standin: RosBiznesSoftStandIn) -> None:
    source = source_for(standin)
    with fast_client(source) as client:
        client.login()
        client.list_many([ListAction("references.users", ["id", "name"])], "users")
    login, listing = standin.log[-2:]
    assert login.method == listing.method == "POST" and login.path == "/api/xml/"
    assert login.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "cookie" not in login.headers and listing.headers["cookie"].startswith("sess_id=")
    body = httpx.QueryParams(listing.body.decode())["xml"]
    assert body.startswith("<?xml version='1.0' encoding='utf8' ?><request><action type='list'")
