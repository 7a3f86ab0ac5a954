"""The Bitrix24 extractor against the portal stand-in over real HTTP on loopback, landing in
the session's warehouse. Each test uses its own connection name, so tests never see each
other's rows; what landed is compared with what the portal serves (and the world behind it)."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from dwh.config.models import Bitrix24Source
from dwh.warehouse import Target
from extractors.bitrix24 import ENTITIES
from extractors.bitrix24.extract import Tuning, extract
from extractors.common.run import RunReport
from extractors.common.runner import run_connection
from sandbox.bitrix24 import Bitrix24StandIn
from sandbox.bitrix24.limits import CostModel
from sandbox.bitrix24.query import ApiError as SandboxApiError
from sandbox.bitrix24.render import Portal
from sandbox.standin import Faults, Request, Response
from sandbox.world.advance import advance
from sandbox.world.generate import generate
from sandbox.world.model import World
from tests.support import PROJECT_ROOT

SEED = 7
WORLD_DEALS = 1_500  # about 420 of them in the Bitrix24 portal, 1,600 stage changes
PORTAL = "b24_wholesale"  # the world's name for the portal
_names = itertools.count()


# -- fixtures and tools ----------------------------------------------------------------------
@pytest.fixture
def world() -> World:
    return generate(SEED, WORLD_DEALS)


@pytest.fixture
def conn(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        yield c


@contextmanager
def serving(standin: Bitrix24StandIn) -> Iterator[Bitrix24StandIn]:
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


def source_for(
    standin: Bitrix24StandIn,
    monkeypatch: pytest.MonkeyPatch,
    *,
    rate: float = 5.0,
    burst: int = 250,
    webhook: str | None = None,
) -> Bitrix24Source:
    """A connection of its own (a fresh name) whose webhook points at the stand-in. Most tests
    use the fastest limiter the configuration allows; the limit has its own test."""
    name = f"b24_test_{next(_names)}"
    variable = f"{name.upper()}_WEBHOOK"
    monkeypatch.setenv(variable, webhook or standin.webhook_url)
    return Bitrix24Source(
        name=name,
        type="bitrix24",
        webhook_url=f"${{{variable}}}",
        portal_url=standin.url,
        requests_per_second=rate,
        burst=burst,
    )


def run(source: Bitrix24Source, conn: psycopg.Connection, mode: str = "full", **tuning: Any) -> RunReport:
    """One extraction as the runner does it, with the lock; ``tuning`` compresses time."""
    if not tuning:
        report = run_connection(source, conn, mode)  # type: ignore[arg-type]
    else:
        report = RunReport(connection=source.name, system="bitrix24", mode=mode)  # type: ignore[arg-type]
        extract(source, conn, mode, report, Tuning(**tuning))  # type: ignore[arg-type]
    assert report.error is None, report.error
    return report


def landed(conn: psycopg.Connection, name: str, entity: str, deleted: bool = False) -> dict[str, Any]:
    rows = conn.execute(
        f"select id, record from raw_bitrix24.{entity} where connection_name = %s and is_deleted = %s",
        (name, deleted),
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False))


def served(world: World) -> dict[str, dict[str, Any]]:
    """Every table as the portal serves it now: what a complete extraction must land."""
    portal = Portal(world, PORTAL)
    deals = {d["ID"]: d for d in portal.deals}
    owed = [d for d in deals.values() if d["STAGE_SEMANTIC_ID"] == "F" and not (d["COMMENTS"] or "").strip()]
    comments = {c["ID"]: c for d in owed for c in portal.timeline_comments.get(d["ID"], [])}
    tables = {
        "deals": deals,
        "stage_history": {str(h["ID"]): h for h in portal.stage_history},
        "categories": {str(c["id"]): c for c in portal.categories},
        "statuses": {s["ID"]: s for s in portal.statuses if s["ENTITY_ID"].startswith("DEAL_STAGE")},
        "deal_fields": dict(portal.deal_fields),
        "users": {u["ID"]: u for u in portal.users},
        "timeline_comments": comments,
        "companies": {c["ID"]: c for c in portal.companies},
        "contacts": {c["ID"]: c for c in portal.contacts},
        "requisites": {r["ID"]: r for r in portal.requisites},
    }
    return {entity: roundtrip(rows) for entity, rows in tables.items()}


def assert_lands_exactly(conn: psycopg.Connection, name: str, expected: dict[str, dict[str, Any]]) -> None:
    for entity in ENTITIES:
        have = landed(conn, name, entity)
        assert set(have) == set(expected[entity]), entity
        differing = [i for i, record in expected[entity].items() if have[i] != record]
        assert not differing, (entity, differing[:5])


def minimum_requests(expected: dict[str, dict[str, Any]]) -> int:
    """The fewest batch requests a complete read can take: every list page (a list ends at
    its first short page), one command per owed deal's comments and per dictionary page,
    50 commands per request."""
    lists = [
        expected["deals"],
        expected["stage_history"],
        expected["companies"],
        expected["contacts"],
        {i: r for i, r in expected["requisites"].items() if r["ENTITY_TYPE_ID"] == "4"},
        {i: r for i, r in expected["requisites"].items() if r["ENTITY_TYPE_ID"] == "3"},
    ]
    pages = sum(len(rows) // 50 + 1 for rows in lists)
    owed = [
        d
        for d in expected["deals"].values()
        if d["STAGE_SEMANTIC_ID"] == "F" and not (d["COMMENTS"] or "").strip()
    ]
    comments = sum(
        sum(1 for c in expected["timeline_comments"].values() if c["ENTITY_ID"] == d["ID"]) // 50 + 1
        for d in owed
    )
    dictionaries = 1 + len(expected["categories"]) + 1 + len(expected["users"]) // 50 + 1
    return math.ceil((pages + comments + dictionaries) / 50)


def cursors(conn: psycopg.Connection, name: str) -> dict[str, Any]:
    rows = conn.execute(
        "select entity, cursor from ops.extract_cursors where connection_name = %s", (name,)
    ).fetchall()
    return dict(rows)


class SharedClock:
    """One clock for the stand-in, the limiter and the backoff: time passes only when the
    client waits, so a run of hundreds of requests at the real limit takes a second."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def never_over_the_leaky_bucket(times: list[float], burst: int = 50, rate: float = 2.0) -> None:
    """In every stretch of the log, no more requests than the bucket lets through."""
    times = sorted(times)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-9, (i, j)


# -- a full load -----------------------------------------------------------------------------
def test_the_raw_tables_are_the_dagster_assets() -> None:
    from dagster_project.defs.extract.assets import ENTITIES as ASSETS

    assert tuple(ASSETS["bitrix24"]) == ENTITIES


def test_a_full_load_lands_exactly_what_the_portal_serves_in_the_fewest_requests(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(Bitrix24StandIn(world, PORTAL)) as standin:
        source = source_for(standin, monkeypatch)
        report = run(source, conn, "full")
        expected = served(world)
        assert_lands_exactly(conn, source.name, expected)

        # against the world itself: every deal there is, none that was deleted
        visible = {d.id for d in world.deals_of(PORTAL) if d.deleted_at is None or d.deleted_at > world.now}
        assert set(landed(conn, source.name, "deals")) == visible and len(visible) > 300
        assert len(landed(conn, source.name, "stage_history")) > 1_000
        assert landed(conn, source.name, "timeline_comments")  # lost deals commented in the timeline
        assert {r["ENTITY_TYPE_ID"] for r in landed(conn, source.name, "requisites").values()} == {"4"}
        assert any(r["RQ_INN"] for r in landed(conn, source.name, "requisites").values())

        # the fewest requests: 50 commands of 50 rows per request, dictionaries riding along
        fewest = minimum_requests(expected)
        assert len(standin.log) == report.stats.requests
        print("REQUESTS", report.stats.requests, "MIN", fewest)
        assert fewest <= report.stats.requests <= fewest + 1, (report.stats.requests, fewest)
        assert report.stats.retries == 0 and report.status == "ok"
        assert report.records["deals"] == len(expected["deals"])
        assert sum(report.deleted.values()) == 0

        # the run is recorded, with its cursors
        row = conn.execute(
            "select status, requests, records from ops.extract_runs where connection_name = %s",
            (source.name,),
        ).fetchone()
        assert row == ("ok", report.stats.requests, sum(report.records.values()))
        stored = cursors(conn, source.name)
        assert stored["deals"]["in_pass"] is False and stored["deals"]["since"]
        assert stored["stage_history"]["last_id"] == max(int(i) for i in expected["stage_history"])
        assert stored["timeline_comments"] == {"pending": []}


def test_a_run_with_nothing_new_costs_one_request(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(Bitrix24StandIn(world, PORTAL)) as standin:
        source = source_for(standin, monkeypatch)
        run(source, conn, "full")
        before = len(standin.log)
        report = run(source, conn, "incremental")
        assert report.stats.requests == 1 and len(standin.log) == before + 1
        assert sum(report.records.values()) == 0 and sum(report.deleted.values()) == 0
        # that one request asked every list what changed, and the dictionaries
        (batch,) = standin.log[before:]
        methods = sorted({c.split("?")[0] for c in batch.json()["cmd"].values()})
        assert methods == sorted(
            {
                "crm.deal.list",
                "crm.stagehistory.list",
                "crm.company.list",
                "crm.contact.list",
                "crm.requisite.list",
                "crm.category.list",
                "crm.status.list",
                "crm.deal.fields",
                "user.get",
            }
        )
        assert_lands_exactly(conn, source.name, served(world))


# -- incremental -----------------------------------------------------------------------------
def test_after_a_week_the_incremental_run_lands_exactly_the_changes_and_full_finds_deletions(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(Bitrix24StandIn(world, PORTAL)) as standin:
        source = source_for(standin, monkeypatch)
        run(source, conn, "full")
        before = {entity: landed(conn, source.name, entity) for entity in ENTITIES}
        changes = advance(world, 7, seed=10)  # a week whose changes include a deletion here
        created, updated = set(changes.created.get(PORTAL, [])), set(changes.updated.get(PORTAL, []))
        deleted = set(changes.deleted.get(PORTAL, []))
        assert created and updated and deleted  # a week with every kind of change
        expected = served(world)

        report = run(source, conn, "incremental")
        after = {entity: landed(conn, source.name, entity) for entity in ENTITIES}
        written = {i for i, r in after["deals"].items() if before["deals"].get(i) != r}
        assert written == created | updated
        assert all(after["deals"][i] == expected["deals"][i] for i in written)
        assert report.records["deals"] == len(created | updated)
        # deletions wait for the full reconciliation: the deleted deals are still there
        assert set(after["deals"]) == set(expected["deals"]) | deleted
        # the stage history gained the week's moves, nothing else moved
        new_moves = set(expected["stage_history"]) - set(before["stage_history"])
        assert new_moves and set(after["stage_history"]) == set(before["stage_history"]) | new_moves
        assert report.records["stage_history"] == len(new_moves)
        for entity in (
            "companies",
            "contacts",
            "requisites",
            "users",
            "categories",
            "statuses",
            "deal_fields",
        ):
            assert after[entity] == {**before[entity], **expected[entity]}, entity
        # comments of the lost deals that changed and have no COMMENTS text
        owed = {
            i
            for i in written
            if expected["deals"][i]["STAGE_SEMANTIC_ID"] == "F"
            and not (expected["deals"][i]["COMMENTS"] or "").strip()
        }
        comments = {i: c for i, c in expected["timeline_comments"].items() if c["ENTITY_ID"] in owed}
        assert owed and after["timeline_comments"] == {**before["timeline_comments"], **comments}
        # one request asks every list what changed; the owed comments need one more
        assert report.stats.requests == 1 + math.ceil(len(owed) / 50)
        assert sum(report.deleted.values()) == 0

        report = run(source, conn, "full")
        assert_lands_exactly(conn, source.name, expected)
        assert set(landed(conn, source.name, "deals", deleted=True)) == deleted
        gone_moves = set(before["stage_history"]) - set(expected["stage_history"])
        assert {before["stage_history"][i]["OWNER_ID"] for i in gone_moves} == {int(i) for i in deleted}
        assert set(landed(conn, source.name, "stage_history", deleted=True)) == gone_moves
        assert report.deleted["deals"] == len(deleted)
        # and a deleted deal that comes back (from the recycle bin) is alive again
        with standin.lock:
            for deal in world.deals_of(PORTAL):
                if deal.id in deleted:
                    deal.deleted_at = None
            standin.invalidate()  # an edit in place: the world's clock did not move
        run(source, conn, "full")
        assert not landed(conn, source.name, "deals", deleted=True)
        assert_lands_exactly(conn, source.name, served(world))


# -- faults and limits -----------------------------------------------------------------------
def test_with_faults_on_the_landed_tables_equal_a_fault_free_run_within_the_real_limit(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = Bitrix24StandIn(world, PORTAL)
    with serving(clean):
        reference = source_for(clean, monkeypatch)
        run(reference, conn, "full")
    faults = Faults(
        seed=3, error_rate=0.05, burst_every=9, burst_length=2, truncate_rate=0.05, drop_rate=0.04
    )
    clock = SharedClock()
    # big batches answer text/html now and then (here: a third of them)
    with serving(Bitrix24StandIn(world, PORTAL, faults=faults, clock=clock, html_batch_rate=0.35)) as standin:
        source = source_for(standin, monkeypatch, rate=2.0, burst=50)  # the portal's real limit
        report = run(source, conn, "full", commands_per_batch=20, clock=clock, sleep=clock.sleep)
        statuses = report.stats.by_status
        errors = sum(v for k, v in statuses.items() if k != 200)
        assert statuses.get(503) and (statuses.get(500) or statuses.get(502))
        assert report.stats.retries > errors  # and 200s that were cut, or HTML, or connections dropped
        for entity in ENTITIES:
            assert landed(conn, source.name, entity) == landed(conn, reference.name, entity), entity
        never_over_the_leaky_bucket([r.at for r in standin.log])

        run(source, conn, "incremental", commands_per_batch=20, clock=clock, sleep=clock.sleep)
        for entity in ENTITIES:
            assert landed(conn, source.name, entity) == landed(conn, reference.name, entity), entity


def test_the_limiter_keeps_a_long_run_within_fifty_plus_two_per_second(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SharedClock()
    # 5xx, cut bodies and dropped connections, but no injected 503: any 503 would be the
    # portal's own leaky bucket refusing a request the limiter let through
    faults = Faults(seed=5, error_rate=0.03, truncate_rate=0.03, drop_rate=0.02)
    with serving(Bitrix24StandIn(world, PORTAL, faults=faults, clock=clock)) as standin:
        source = source_for(standin, monkeypatch, rate=2.0, burst=50)
        report = run(source, conn, "full", commands_per_batch=1, clock=clock, sleep=clock.sleep)
        times = [r.at for r in standin.log]
        assert len(times) > 150 and report.stats.retries > 0
        assert report.stats.by_status.get(503, 0) == 0
        never_over_the_leaky_bucket(times)
        assert max(times) - min(times) >= (len(times) - 50) / 2 * 0.97  # it had to wait: the limit binds
        assert_lands_exactly(conn, source.name, served(world))


class RefusalCountingStandIn(Bitrix24StandIn):
    """The stand-in, counting the commands it refused for their method's operating time."""

    refusals = 0

    def _call(self, portal: Portal, method: str, params: Any) -> Any:
        try:
            return super()._call(portal, method, params)
        except SandboxApiError as error:
            if error.code == "OPERATION_TIME_LIMIT":
                self.refusals += 1
            raise


def test_a_method_near_its_operating_time_budget_waits_for_the_reset_instead_of_being_refused(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SharedClock()
    # a portal where reading is slow: a page of 50 rows costs a second of the method's
    # 20-second budget per minute, and the stage history alone needs 35 pages
    standin = RefusalCountingStandIn(
        world,
        PORTAL,
        clock=clock,
        operating_budget=20.0,
        operating_window=60.0,
        costs=CostModel(per_call=0.05, per_row=0.02),
    )
    with serving(standin):
        source = source_for(standin, monkeypatch, rate=2.0, burst=50)
        started = clock.now
        report = run(source, conn, "full", clock=clock, sleep=clock.sleep, operating_budget=20.0)
        assert clock.now - started >= 60.0  # it waited for at least one reset
        assert standin.refusals == 0 and 429 not in report.stats.by_status
        for method in ("crm.stagehistory.list", "crm.deal.list"):
            assert standin.operating.used(method) <= 20.0
        assert_lands_exactly(conn, source.name, served(world))


class BatchBlockingStandIn(Bitrix24StandIn):
    """The stand-in refusing the second request: the batch method itself over its operating time."""

    def handle(self, request: Request) -> Response:
        if len(self.log) == 2:
            return Response.json(
                429,
                {
                    "error": "OPERATION_TIME_LIMIT",
                    "error_description": "Method is blocked due to operation time limit.",
                },
            )
        return super().handle(request)


def test_a_429_on_the_batch_itself_waits_until_the_announced_reset(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SharedClock()
    with serving(BatchBlockingStandIn(world, PORTAL, clock=clock, operating_window=300.0)) as standin:
        source = source_for(standin, monkeypatch, rate=2.0, burst=50)
        report = run(source, conn, "full", clock=clock, sleep=clock.sleep)
        assert report.stats.by_status[429] == 1 and report.stats.retries == 1
        first, refused, retried = (r.at for r in standin.log[:3])
        assert refused == first and retried - first >= 300.0  # the first batch left the window
        assert_lands_exactly(conn, source.name, served(world))


# -- bad records, dead credentials -----------------------------------------------------------
class CorruptingStandIn(Bitrix24StandIn):
    """The stand-in serving a few broken rows: a deal whose DATE_MODIFY is not a date, a
    stage change that is not an object (the 50th row: the one the next page chains on), a
    company without an ID."""

    bad_deal = ""
    bad_move = 0
    bad_company = ""

    def _call(self, portal: Portal, method: str, params: Any) -> Any:
        outcome = super()._call(portal, method, params)
        rows = outcome.result["items"] if method == "crm.stagehistory.list" else outcome.result
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            if method == "crm.deal.list" and row.get("ID") == self.bad_deal:
                rows[i] = {**row, "DATE_MODIFY": "31.02.2026 25:61"}
            elif method == "crm.stagehistory.list" and row.get("ID") == self.bad_move:
                rows[i] = "<br>Fatal error: Allowed memory size exhausted"
            elif method == "crm.company.list" and row.get("ID") == self.bad_company:
                rows[i] = {k: v for k, v in row.items() if k != "ID"}
        return outcome


def test_bad_records_are_rejected_with_a_reason_and_the_rest_land(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = served(world)
    standin = CorruptingStandIn(world, PORTAL)
    standin.bad_deal = sorted(expected["deals"], key=int)[60]
    standin.bad_move = sorted(int(i) for i in expected["stage_history"])[49]
    standin.bad_company = sorted(expected["companies"], key=int)[3]
    with serving(standin):
        source = source_for(standin, monkeypatch)
        report = run(source, conn, "full")
        assert report.status == "warning"
        assert report.rejects == {"deals": 1, "stage_history": 1, "companies": 1}
        rejects = conn.execute(
            "select entity, record_id, reason, payload from ops.rejects where connection_name = %s order by entity",
            (source.name,),
        ).fetchall()
        by_entity = {r[0]: r[1:] for r in rejects}
        assert len(rejects) == 3
        record_id, reason, payload = by_entity["deals"]
        assert record_id == standin.bad_deal and "DATE_MODIFY" in reason and standin.bad_deal in reason
        assert payload["DATE_MODIFY"] == "31.02.2026 25:61"
        assert (
            "not an object" in by_entity["stage_history"][1]
            and "Fatal error" in by_entity["stage_history"][2]
        )
        assert by_entity["companies"][0] is None and "ID" in by_entity["companies"][1]
        # everything else landed, the pages after the broken rows included
        expected["deals"].pop(standin.bad_deal)
        expected["stage_history"].pop(str(standin.bad_move))
        expected["companies"].pop(standin.bad_company)
        assert_lands_exactly(conn, source.name, expected)
        row = conn.execute(
            "select status, rejects from ops.extract_runs where connection_name = %s", (source.name,)
        ).fetchone()
        assert row == ("warning", 3)


def test_a_dead_webhook_stops_its_connection_with_one_clear_message(
    world: World, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(Bitrix24StandIn(world, PORTAL)) as standin:
        dead_code = "d" * 16
        dead = source_for(standin, monkeypatch, webhook=f"{standin.url}/rest/1/{dead_code}/")
        alive = source_for(standin, monkeypatch)
        reports = [run_connection(s, conn, "full") for s in (dead, alive)]  # as the Dagster asset does
        failed, ok = reports
        assert failed.status == "failed" and ok.status == "ok"
        message = failed.error or ""
        assert message.startswith(f"{dead.name}: ")
        assert "INVALID_CREDENTIALS" in message and "incoming webhook" in message
        assert f"{dead.name.upper()}_WEBHOOK" in message  # where to put the new one
        assert dead_code not in message and standin.code not in message
        assert failed.stats.requests == 1  # refused credentials are not retried
        assert not landed(conn, dead.name, "deals") and landed(conn, alive.name, "deals")
        row = conn.execute(
            "select status, message from ops.extract_runs where connection_name = %s", (dead.name,)
        ).fetchone()
        assert row == ("failed", message)

        # a value that is not a webhook URL at all: named by its variable, never echoed
        broken = source_for(standin, monkeypatch, webhook="not-a-url-s3cr3t")
        report = run_connection(broken, conn, "full")
        assert report.error and "s3cr3t" not in report.error
        assert f"{broken.name.upper()}_WEBHOOK" in report.error and report.stats.requests == 0


# -- a run killed midway ---------------------------------------------------------------------
KILLED_RUN = """
import sys
import psycopg
sys.path.insert(0, {root!r})
from dwh.config.models import Bitrix24Source
from extractors.bitrix24.extract import Tuning, extract
from extractors.common.run import RunReport
from extractors.common.state import connection_lock

source = Bitrix24Source(
    name={name!r}, type="bitrix24", webhook_url="${{{variable}}}", portal_url="http://127.0.0.1",
    requests_per_second=5, burst=250,
)
with psycopg.connect({conninfo!r}, autocommit=True) as conn, connection_lock(conn, source.name):
    extract(source, conn, "full", RunReport(source.name, "bitrix24", "full"), Tuning(commands_per_batch=3))
print("finished")
"""


def test_a_run_killed_midway_resumes_with_no_gaps_and_no_duplicates(
    world: World, conn: psycopg.Connection, warehouse: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every answer takes a tenth of a second: the run is long enough to be killed in the middle
    slow = Faults(seed=1, slow_rate=1.0, slow_seconds=0.1)
    with serving(Bitrix24StandIn(world, PORTAL, faults=slow)) as standin:
        source = source_for(standin, monkeypatch)
        variable = f"{source.name.upper()}_WEBHOOK"
        script = KILLED_RUN.format(
            root=str(PROJECT_ROOT), name=source.name, variable=variable, conninfo=warehouse.conninfo()
        )
        process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script)],
            env={**os.environ, variable: standin.webhook_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while len(standin.log) < 15 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)  # no clean-up, no last commit: the machine died
        out, err = process.communicate(timeout=10)
        assert process.returncode == -signal.SIGKILL and b"finished" not in out, err.decode()[-2000:]

        stored = cursors(conn, source.name)
        interrupted = {name: c for name, c in stored.items() if c.get("in_pass")}
        assert "stage_history" in interrupted and interrupted["stage_history"]["after_id"] > 0
        partly = landed(conn, source.name, "stage_history")
        assert 0 < len(partly) < len(served(world)["stage_history"])

        seen = len(standin.log)
        run(source, conn, "incremental")  # the next scheduled run picks the interrupted pass up
        first = standin.log[seen].json()["cmd"]
        assert f"filter%5B%3EID%5D={interrupted['stage_history']['after_id']}&" in first["history_0"]
        assert_lands_exactly(conn, source.name, served(world))
        counts = conn.execute(
            "select count(*), count(distinct id) from raw_bitrix24.stage_history where connection_name = %s",
            (source.name,),
        ).fetchone()
        assert counts[0] == counts[1] == len(served(world)["stage_history"])
        assert not any(c.get("in_pass") for c in cursors(conn, source.name).values() if isinstance(c, dict))
