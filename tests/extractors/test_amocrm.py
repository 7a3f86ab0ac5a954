"""The amoCRM extractor against the amoCRM stand-in over real HTTP on loopback, landing in the
session's warehouse.

What the API serves is read from the stand-in's own rendering (``served``), and counts are
checked against the world; every connection name is private to its test. Most tests run the
stand-in and the limiter fast; the test of the limit runs both at amoCRM's real 7 per second.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

import extractors.amocrm as amocrm_package
from dwh.config.models import AmoCRMSource
from dwh.warehouse import Target
from extractors.amocrm.extract import OVERLAP_SECONDS, extract
from extractors.common.ratelimit import SlidingWindowLimiter
from extractors.common.run import RunReport
from extractors.common.runner import run_connection
from sandbox.amocrm import AmoCRMStandIn
from sandbox.amocrm.render import note_id
from sandbox.standin import Faults, Request, Response
from sandbox.world.advance import advance
from sandbox.world.generate import generate
from sandbox.world.model import World
from tests.support import PROJECT_ROOT

WORLD_SOURCE = "amo_retail"  # the world's amoCRM account every stand-in here serves
FAST = 1000  # requests per second of the stand-in and the limiter in tests that are not about the limit
ENTITIES = amocrm_package.ENTITIES


# -- fixtures and helpers -------------------------------------------------------------------
@pytest.fixture
def conn(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        yield c


@pytest.fixture
def start() -> Iterator[Callable[..., AmoCRMStandIn]]:
    started: list[AmoCRMStandIn] = []

    def _start(world: World, requests_per_second: int = FAST, **kwargs: Any) -> AmoCRMStandIn:
        standin = AmoCRMStandIn(world, WORLD_SOURCE, requests_per_second=requests_per_second, **kwargs)
        standin.start()
        started.append(standin)
        return standin

    yield _start
    for s in started:
        s.stop()


def forget(conn: psycopg.Connection, name: str) -> None:
    """Nothing of connection ``name`` is left from an earlier test."""
    for entity in ENTITIES:
        if conn.execute("select to_regclass(%s)", (f"raw_amocrm.{entity}",)).fetchone()[0]:
            conn.execute(f"delete from raw_amocrm.{entity} where connection_name = %s", (name,))
    for table in ("extract_cursors", "oauth_tokens", "rejects", "extract_runs"):
        conn.execute(f"delete from ops.{table} where connection_name = %s", (name,))


def amo_source(
    name: str, standin: AmoCRMStandIn, monkeypatch: pytest.MonkeyPatch, *, long_lived: bool = False
) -> AmoCRMSource:
    """The connection's configuration as sources.yaml would give it, secrets in the environment."""
    creds = standin.credentials()
    prefix = name.upper()
    if long_lived:
        monkeypatch.setenv(f"{prefix}_TOKEN", creds["AMO_RETAIL_LONG_LIVED_TOKEN"])
        auth: dict[str, Any] = {"long_lived_token": f"${{{prefix}_TOKEN}}"}
    else:
        monkeypatch.setenv(f"{prefix}_CLIENT_ID", creds["AMO_RETAIL_CLIENT_ID"])
        monkeypatch.setenv(f"{prefix}_CLIENT_SECRET", creds["AMO_RETAIL_CLIENT_SECRET"])
        monkeypatch.setenv(f"{prefix}_REFRESH_TOKEN", creds["AMO_RETAIL_REFRESH_TOKEN"])
        auth = {
            "client_id": f"${{{prefix}_CLIENT_ID}}",
            "client_secret": f"${{{prefix}_CLIENT_SECRET}}",
            "refresh_token": f"${{{prefix}_REFRESH_TOKEN}}",
            "redirect_uri": standin.redirect_uri,
        }
    return AmoCRMSource.model_validate(
        {"name": name, "type": "amocrm", "base_url": standin.url, "auth": auth}
    )


def run(
    conn: psycopg.Connection, source: AmoCRMSource, mode: str = "full", *, fast: bool = True, **options: Any
) -> RunReport:
    """One run through the runner (lock, error capture, ops.extract_runs), with a fast limiter
    and short backoff unless ``fast`` is off."""
    if fast:
        options.setdefault("limiter", SlidingWindowLimiter(FAST))
    options.setdefault("backoff_base", 0.02)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(amocrm_package, "extract", functools.partial(extract, **options))
        return run_connection(source, conn, mode)  # type: ignore[arg-type]


def served(standin: AmoCRMStandIn) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record the account serves now, per raw table, as the extractor asks for it
    (leads ``with=contacts,loss_reason``; deleted leads under ``leads_deleted``)."""
    data = standin.rendered()
    leads = {}
    for lead in data.leads:
        embedded = {
            **lead["_embedded"],
            "contacts": data.lead_contacts.get(lead["id"], []),
            "loss_reason": data.lead_loss_reason.get(lead["id"], []),
        }
        leads[str(lead["id"])] = {**lead, "_embedded": embedded}

    def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {str(r["id"]): r for r in records}

    return {
        "leads": leads,
        "leads_deleted": by_id(data.deleted_leads),
        "pipelines": by_id(data.pipelines),
        "loss_reasons": by_id(data.loss_reasons),
        "events": by_id([e for e in data.events if e["type"] == "lead_status_changed"]),
        "users": by_id(data.users),
        "notes": by_id([n for n in data.notes if n["note_type"] == "common"]),
        "contacts": by_id(data.contacts),
        "companies": by_id(data.companies),
    }


def landed(conn: psycopg.Connection, name: str, entity: str, deleted: bool = False) -> dict[str, Any]:
    rows = conn.execute(
        f"select id, record from raw_amocrm.{entity} where connection_name = %s and is_deleted = %s",
        (name, deleted),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def assert_lands_what_is_served(conn: psycopg.Connection, name: str, standin: AmoCRMStandIn) -> None:
    api = served(standin)
    for entity in ENTITIES:
        assert landed(conn, name, entity) == api[entity], entity
    gone = landed(conn, name, "leads", deleted=True)
    assert api["leads_deleted"].items() <= gone.items()


def oauth_calls(standin: AmoCRMStandIn) -> list[Request]:
    """The refresh requests the stand-in saw (faults included)."""
    return [
        r for r in standin.log
        if r.path == "/oauth2/access_token" and json.loads(r.body).get("grant_type") == "refresh_token"
    ]  # fmt: skip


def pages(n: int, per_page: int) -> int:
    return max(1, math.ceil(n / per_page))


# -- the limiter ----------------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_limiter_never_lets_eight_arrive_within_a_second_whatever_the_latency() -> None:
    """Requests arrive anywhere between being sent and being answered; latencies vary."""
    t = FakeTime()
    limiter = SlidingWindowLimiter(7, clock=t.clock, sleep=t.sleep)
    rng = random.Random(3)
    arrivals = []
    for _ in range(300):
        limiter.acquire()
        sent = t.now
        latency = rng.choice([0.001, 0.01, 0.2, 0.6])
        arrivals.append(sent + rng.uniform(0, latency))
        t.now = sent + latency
        limiter.done()
        t.now += rng.choice([0.0, 0.0, 0.05])  # the caller's own work between requests
    arrivals.sort()
    most = max(sum(1 for a in arrivals if b <= a < b + 1.0) for b in arrivals)
    assert most == 7  # the limit is reached, never passed
    # a token bucket sized 7/s with a burst of 7 would let 13 into the first second
    limiter = SlidingWindowLimiter(7, clock=t.clock, sleep=t.sleep)
    begin = t.now
    for _ in range(8):
        limiter.acquire()
        limiter.done()
    assert t.now - begin >= 1.0


def test_limiter_waits_a_whole_window_after_the_server_says_too_fast() -> None:
    t = FakeTime()
    limiter = SlidingWindowLimiter(7, clock=t.clock, sleep=t.sleep)
    limiter.acquire()
    limiter.done()
    limiter.drain()
    before = t.now
    limiter.acquire()
    assert t.now - before >= 1.0
    assert SlidingWindowLimiter(3.5).window == pytest.approx(3 / 3.5 * 1.02)


# -- full load and an unchanged incremental run --------------------------------------------
def test_full_load_lands_exactly_what_is_served_then_an_unchanged_run_costs_nine_requests(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_full"
    forget(conn, name)
    world = generate(11, 900)
    standin = start(world)
    source = amo_source(name, standin, monkeypatch)
    api = served(standin)
    assert len(api["leads"]) > 250 and len(api["events"]) > 300 and api["leads_deleted"]  # several pages

    report = run(conn, source, "full")

    assert report.error is None and report.status == "ok", report.error
    assert_lands_what_is_served(conn, name, standin)
    alive = [d for d in world.deals_of(WORLD_SOURCE) if d.deleted_at is None and d.created_at <= world.now]
    deleted = [
        d for d in world.deals_of(WORLD_SOURCE) if d.deleted_at is not None and d.deleted_at <= world.now
    ]
    assert set(landed(conn, name, "leads")) == {d.id for d in alive}
    assert set(landed(conn, name, "leads", deleted=True)) == {d.id for d in deleted}
    # the fewest requests: one token refresh, then every list in its largest pages
    minimum = 1 + sum(
        pages(len(api[e]), 250)
        for e in (
            "pipelines",
            "loss_reasons",
            "users",
            "leads",
            "leads_deleted",
            "notes",
            "contacts",
            "companies",
        )
    )
    minimum += pages(len(api["events"]), 100)  # fmt: skip
    assert report.stats.requests == minimum == len(standin.log)
    assert report.stats.retries == 0
    # the OAuth pair is in the warehouse, descending from the configured refresh token
    row = conn.execute(
        "select refresh_token, seeded_from, expires_at > now() from ops.oauth_tokens where connection_name = %s",
        (name,),
    ).fetchone()
    configured = standin.credentials()["AMO_RETAIL_REFRESH_TOKEN"]
    assert row == (standin.oauth.refresh_token(1), hashlib.sha256(configured.encode()).hexdigest(), True)
    cursors = dict(conn.execute(
        "select entity, cursor from ops.extract_cursors where connection_name = %s", (name,)
    ).fetchall())  # fmt: skip
    assert cursors["leads"] == {"updated_at": max(r["updated_at"] for r in api["leads"].values())}
    assert cursors["events"] == {"created_at": max(r["created_at"] for r in api["events"].values())}

    before = len(standin.log)
    again = run(conn, source, "incremental")
    assert again.error is None
    # one request per list (the overlap window re-reads a few records: no-ops), no token refresh
    assert again.stats.requests == 9 == len(standin.log) - before
    assert not oauth_calls(standin)[1:]
    assert sum(again.records.values()) == 0 and sum(again.deleted.values()) == 0
    assert_lands_what_is_served(conn, name, standin)
    runs = conn.execute(
        "select mode, status, requests from ops.extract_runs where connection_name = %s order by run_id",
        (name,),
    ).fetchall()
    assert runs == [("full", "ok", minimum), ("incremental", "ok", 9)]


# -- the world moves on ---------------------------------------------------------------------
def test_incremental_lands_exactly_the_changes_and_full_reconciliation_finds_what_vanished(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_advance"
    forget(conn, name)
    world = generate(11, 600)
    standin = start(world)
    source = amo_source(name, standin, monkeypatch)
    assert run(conn, source, "full").error is None
    before = served(standin)
    cursors = dict(conn.execute(
        "select entity, cursor from ops.extract_cursors where connection_name = %s", (name,)
    ).fetchall())  # fmt: skip

    changes = advance(world, 14, seed=6)
    standin.invalidate()
    after = served(standin)
    assert changes.deleted.get(WORLD_SOURCE) and changes.created.get(WORLD_SOURCE)
    changed = {i for i, r in after["leads"].items() if before["leads"].get(i) != r}
    assert changed and changed <= changes.ids(WORLD_SOURCE)

    report = run(conn, source, "incremental")

    assert report.error is None, report.error
    assert_lands_what_is_served(conn, name, standin)
    assert report.records["leads"] == len(changed)
    assert set(landed(conn, name, "leads", deleted=True)) == set(after["leads_deleted"])
    assert report.deleted["leads"] == len(set(after["leads_deleted"]) - set(before["leads_deleted"]))
    new_events = set(after["events"]) - set(before["events"])
    assert new_events and report.records["events"] == len(new_events)

    def since(cursor: str, key: str) -> int:
        return cursors[cursor][key] - OVERLAP_SECONDS if cursor in cursors else 0

    def newer(entity: str, cursor: str, key: str = "updated_at") -> int:
        return sum(1 for r in after[entity].values() if r[key] >= since(cursor, key))

    expected = 3  # pipelines, loss reasons, users: read whole
    expected += sum(pages(newer(e, e), 250) for e in ("leads", "notes", "contacts", "companies"))
    expected += pages(newer("leads_deleted", "leads_deleted"), 250)
    expected += pages(newer("events", "events", "created_at"), 100)
    assert report.stats.requests == expected
    assert report.stats.requests <= 12

    # records that vanish without a trace (a lead purged from the trash, a note deleted): an
    # incremental run cannot see it, the full reconciliation marks them deleted
    purged = next(
        d
        for d in world.deals_of(WORLD_SOURCE)
        if d.deleted_at is None and not d.comments and len(d.moves) == 1
    )  # no notes, no events
    world.deals.remove(purged)
    commented = next(d for d in world.deals_of(WORLD_SOURCE) if d.deleted_at is None and d.comments)
    note_gone = commented.comments.pop()
    standin.invalidate()
    assert run(conn, source, "incremental").error is None
    assert purged.id in landed(conn, name, "leads")
    notes_before = set(landed(conn, name, "notes"))

    full = run(conn, source, "full")

    assert full.error is None
    assert_lands_what_is_served(conn, name, standin)
    assert full.deleted["leads"] == 1 and purged.id in landed(conn, name, "leads", deleted=True)
    vanished = notes_before - set(served(standin)["notes"])  # with it, the notes of leads deleted above
    assert str(note_id(note_gone.id, commented.id)) in vanished
    assert full.deleted["notes"] == len(vanished)
    assert vanished <= set(landed(conn, name, "notes", deleted=True))
    assert full.records.get("leads", 0) == 0  # nothing else changed: every upsert was a no-op


def test_a_lead_changed_while_the_pages_are_read_is_not_skipped(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page numbers over a list ordered by updated_at skip a record when one already read is
    changed (it moves to the end, the rest slide back by one); keyset paging does not."""
    name = "amo_t_moving"
    forget(conn, name)
    world = generate(11, 900)
    standin = start(world)
    source = amo_source(name, standin, monkeypatch, long_lived=True)
    first_page = sorted(served(standin)["leads"].values(), key=lambda r: (r["updated_at"], r["id"]))[:250]
    moved = next(d for d in world.deals_of(WORLD_SOURCE) if d.id == str(first_page[10]["id"]))

    class ChangeAfterFirstLeadPage(SlidingWindowLimiter):
        def acquire(self) -> None:
            leads_pages = [
                r for r in standin.log if r.path == "/api/v4/leads" and "only_deleted" not in r.raw_query
            ]
            if len(leads_pages) == 1 and moved.updated_at < world.now:
                moved.name += " (изменено)"
                moved.updated_at = world.now
                standin.invalidate()
            super().acquire()

    report = run(conn, source, "full", limiter=ChangeAfterFirstLeadPage(FAST))

    assert report.error is None
    assert moved.updated_at == world.now  # the change did happen mid-run
    assert_lands_what_is_served(conn, name, standin)


# -- faults and the real limit --------------------------------------------------------------
def test_faults_change_nothing_landed_and_the_stand_in_never_sees_more_than_seven_a_second(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_name, faulty_name = "amo_t_clean", "amo_t_faulty"
    forget(conn, clean_name)
    forget(conn, faulty_name)
    world = generate(11, 500)
    standin = start(world, requests_per_second=7)  # amoCRM's real limit, in real time
    clean = run(conn, amo_source(clean_name, standin, monkeypatch, long_lived=True), "full", fast=False)
    assert clean.error is None and clean.stats.retries == 0

    # 5% 5xx, bursts of 429, truncated JSON, dropped connections, an access token dying every
    # 6 requests. (A token answer lost in transit after amoCRM rotated the token would kill
    # the integration for any client: the fault seed is one whose faults miss the token calls.)
    standin.faults = Faults(seed=6, error_rate=0.05, burst_every=17, burst_length=3, truncate_rate=0.06,
                            drop_rate=0.03, expire_token_after=6)  # fmt: skip
    seen, answered = len(standin.log), len(standin.outcomes)
    faulty = run(conn, amo_source(faulty_name, standin, monkeypatch), "full", fast=False)

    assert faulty.error is None, faulty.error
    for entity in ENTITIES:
        for deleted in (False, True):
            assert landed(conn, faulty_name, entity, deleted) == landed(conn, clean_name, entity, deleted), (
                entity
            )
    statuses = faulty.stats.by_status
    assert statuses.get(502) and statuses.get(429) and statuses.get(401)  # 401: the token died mid-run
    dropped = faulty.stats.requests - sum(statuses.values())  # connections closed with no answer
    broken = faulty.stats.retries - statuses[429] - statuses[502] - dropped  # 200s with a cut JSON body
    assert dropped >= 1 and broken >= 1
    assert faulty.stats.requests == len(standin.log) - seen
    token_calls = [o for o in standin.outcomes[answered:] if o.path == "/oauth2/access_token"]
    assert len(token_calls) >= 3 and all(o.status == 200 for o in token_calls)  # refreshed, never refused
    assert standin.max_requests_in_window(1.0) == 7  # the limit is used to the full, never passed
    assert not any(o.limited for o in standin.outcomes) and not standin.blocked


def test_a_token_answer_lost_after_amocrm_rotated_the_token_is_named_as_such(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one failure no client can prevent: amoCRM rotates the token, the answer is cut in
    transit, and the retry with the old token is refused. The message says so."""
    name = "amo_t_lost"
    forget(conn, name)
    standin = start(generate(11, 400))
    standin.faults = Faults(seed=1, error_rate=0.05, burst_every=17, burst_length=3, truncate_rate=0.06,
                            drop_rate=0.03, expire_token_after=6)  # fmt: skip
    report = run(conn, amo_source(name, standin, monkeypatch), "full")
    assert report.error is not None
    assert "no usable answer" in report.error and f"{name.upper()}_REFRESH_TOKEN" in report.error
    assert [o.status for o in standin.outcomes if o.path == "/oauth2/access_token"][-2:] == [200, 401]


# -- interrupted runs -----------------------------------------------------------------------
class Killed(BaseException):
    """The process dying: nothing in the extractor catches it."""


class DiesWhen(SlidingWindowLimiter):
    """Dies instead of sending the next request once ``when(log)`` holds."""

    def __init__(self, standin: AmoCRMStandIn, when: Callable[[list[Request]], bool]):
        super().__init__(FAST)
        self.standin, self.when = standin, when

    def acquire(self) -> None:
        if self.when(self.standin.log):
            raise Killed
        super().acquire()


def count(log: list[Request], path: str) -> int:
    return sum(1 for r in log if r.path == path)


def test_a_run_killed_midway_and_run_again_has_no_duplicates_and_no_gaps(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_killed"
    forget(conn, name)
    world = generate(11, 900)
    standin = start(world)
    source = amo_source(name, standin, monkeypatch)
    api = served(standin)
    by_time = sorted(api["leads"].values(), key=lambda r: (r["updated_at"], r["id"]))
    assert len(by_time) > 250

    # dies asking for the second page of leads
    with pytest.raises(Killed):
        run(conn, source, "full", limiter=DiesWhen(standin, lambda log: count(log, "/api/v4/leads") == 1))
    assert set(landed(conn, name, "leads")) == {str(r["id"]) for r in by_time[:250]}
    cursor = conn.execute(
        "select cursor from ops.extract_cursors where connection_name = %s and entity = 'leads'", (name,)
    ).fetchone()[0]
    assert cursor == {"updated_at": by_time[249]["updated_at"]}

    # again, incrementally: dies in the middle of the events
    half = pages(len(api["events"]), 100) // 2
    events_before = count(standin.log, "/api/v4/events")
    with pytest.raises(Killed):
        run(conn, source, "incremental",
            limiter=DiesWhen(standin, lambda log: count(log, "/api/v4/events") - events_before == half))  # fmt: skip
    events_so_far = landed(conn, name, "events")
    assert len(events_so_far) == half * 100
    assert set(landed(conn, name, "leads")) == set(api["leads"])
    assert conn.execute(
        "select count(*) from ops.extract_cursors where connection_name = %s and entity = 'events'", (name,)
    ).fetchone()[0] == 0  # fmt: skip

    report = run(conn, source, "incremental")

    assert report.error is None
    assert_lands_what_is_served(conn, name, standin)
    assert report.records["events"] == len(api["events"]) - len(events_so_far)
    assert report.records.get("leads", 0) == 0
    assert len(oauth_calls(standin)) == 1  # the pair stored by the first run served them all


RUN_CHILD = r"""
import os, sys
import psycopg
from dwh.config.models import AmoCRMSource
from extractors.common.runner import run_connection
source = AmoCRMSource.model_validate_json(sys.argv[1])
with psycopg.connect(os.environ["TEST_CONNINFO"], autocommit=True) as conn:
    run_connection(source, conn, "full")
print("the run was not killed")
"""


class KillsTheRun(AmoCRMStandIn):
    """SIGKILLs ``victim`` (the extracting process) when the request for the ``kill_at``-th page
    of leads arrives: the client asked for it as soon as the page before it was parsed, and
    may be landing that one."""

    victim: int | None = None
    kill_at = 0

    def handle(self, request: Request) -> Response:
        if self.victim is not None and request.path == "/api/v4/leads":
            with self.lock:
                pages = {r.raw_query for r in self.log if r.path == request.path}
            if len(pages) == self.kill_at:
                os.kill(self.victim, signal.SIGKILL)
                self.victim = None
        return super().handle(request)


def test_a_process_killed_while_it_reads_ahead_leaves_a_prefix_with_its_cursor_and_the_rerun_lands_the_rest_once(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, warehouse: Target
) -> None:
    name = "amo_t_sigkill"
    forget(conn, name)
    world = generate(11, 2000)
    standin = KillsTheRun(
        world, WORLD_SOURCE, Faults(seed=4, error_rate=0.08, drop_rate=0.04, truncate_rate=0.04)
    )
    standin.start()
    try:
        source = amo_source(name, standin, monkeypatch)
        api = served(standin)
        by_time = sorted(api["leads"].values(), key=lambda r: (r["updated_at"], r["id"]))
        assert len(by_time) > 2 * 250
        standin.kill_at = 3  # page 1 has landed (page 2 was handed over), page 3 cannot have
        env = {**os.environ, "TEST_CONNINFO": warehouse.conninfo(), "PYTHONPATH": str(PROJECT_ROOT)}
        child = subprocess.Popen([sys.executable, "-c", RUN_CHILD, source.model_dump_json()], env=env,
                                 cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        standin.victim = child.pid
        output, _ = child.communicate(timeout=120)
        assert child.returncode == -signal.SIGKILL, output

        # what the killed run committed is a prefix of the leads in their order, whole pages of
        # it, with the cursor of its last page
        so_far = landed(conn, name, "leads")
        assert 250 <= len(so_far) < len(by_time)
        assert set(so_far) == {str(r["id"]) for r in by_time[: len(so_far)]}
        assert all(so_far[str(r["id"])] == r for r in by_time[: len(so_far)])
        cursor = conn.execute(
            "select cursor from ops.extract_cursors where connection_name = %s and entity = 'leads'", (name,)
        ).fetchone()[0]
        assert cursor == {"updated_at": by_time[len(so_far) - 1]["updated_at"]}

        report = run(conn, source, "incremental")

        assert report.error is None, report.error
        assert_lands_what_is_served(conn, name, standin)
        assert report.records["leads"] == len(by_time) - len(so_far)  # what had landed is not written again
        assert report.records["events"] == len(api["events"])
        assert report.stats.retries > 0  # the faults went on in the rerun
    finally:
        standin.stop()


# -- OAuth ----------------------------------------------------------------------------------
CHILD = r"""
import os, signal, sys
import psycopg
from dwh.config.models import AmoCRMSource
from extractors.amocrm import auth
from extractors.common.runner import run_connection

save = auth.TokenStore.save
def save_then_die(self, pair):
    save(self, pair)
    os.kill(os.getpid(), signal.SIGKILL)  # right after the new pair is committed
auth.TokenStore.save = save_then_die
source = AmoCRMSource.model_validate_json(sys.argv[1])
with psycopg.connect(os.environ["TEST_CONNINFO"], autocommit=True) as conn:
    run_connection(source, conn, "full")
print("the run went on after the refresh")
"""


def test_a_crash_right_after_a_refresh_keeps_the_new_token_and_no_refresh_token_is_used_twice(
    conn: psycopg.Connection,
    start: Callable[..., AmoCRMStandIn],
    monkeypatch: pytest.MonkeyPatch,
    warehouse: Target,
) -> None:
    name = "amo_t_crash"
    forget(conn, name)
    world = generate(11, 375)
    standin = start(world)
    source = amo_source(name, standin, monkeypatch)
    env = {**os.environ, "TEST_CONNINFO": warehouse.conninfo(), "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.run([sys.executable, "-c", CHILD, source.model_dump_json()], env=env, cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert child.returncode == -9, child.stdout + child.stderr
    assert standin.oauth.generation == 1  # amoCRM rotated the token: the configured one is dead now
    stored = conn.execute("select refresh_token from ops.oauth_tokens where connection_name = %s", (name,))
    assert stored.fetchone()[0] == standin.oauth.refresh_token(1)

    # a new run, with access tokens dying every 4 requests: it starts from the stored pair and
    # refreshes several times, without a person re-authorising
    standin.faults = Faults(expire_token_after=4)
    report = run(conn, source, "full")

    assert report.error is None, report.error
    assert_lands_what_is_served(conn, name, standin)
    sent = [json.loads(r.body)["refresh_token"] for r in oauth_calls(standin)]
    assert len(sent) >= 4
    assert len(set(sent)) == len(sent)  # a refresh token is used once, never again
    assert sent[0] == standin.credentials()["AMO_RETAIL_REFRESH_TOKEN"]
    assert sent[1] == standin.oauth.refresh_token(1)  # the one the crashed run committed
    assert all(o.status == 200 for o in standin.outcomes if o.path == "/oauth2/access_token")


def test_a_dead_refresh_token_stops_the_connection_with_one_message_and_a_new_one_in_the_env_wins(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_dead"
    forget(conn, name)
    world = generate(11, 300)
    standin = start(world)
    source = amo_source(name, standin, monkeypatch)
    assert run(conn, source, "full").error is None

    # someone re-authorises the integration elsewhere: the stored pair is revoked
    creds = standin.credentials()
    answer = httpx.post(standin.url + "/oauth2/access_token", json={
        "client_id": creds["AMO_RETAIL_CLIENT_ID"], "client_secret": creds["AMO_RETAIL_CLIENT_SECRET"],
        "grant_type": "authorization_code", "code": standin.oauth.authorization_code,
        "redirect_uri": standin.redirect_uri,
    })  # fmt: skip
    assert answer.status_code == 200
    new_refresh_token = answer.json()["refresh_token"]
    stored = conn.execute("select refresh_token from ops.oauth_tokens where connection_name = %s", (name,))
    dead = stored.fetchone()[0]
    before = len(standin.log)

    report = run(conn, source, "incremental")

    assert report.status == "failed"
    assert report.error is not None
    assert report.error.startswith(f"{name}: amoCRM refused the refresh token (Token has been revoked)")
    assert "re-authorise the integration" in report.error.lower()
    assert f"{name.upper()}_REFRESH_TOKEN" in report.error
    assert dead not in report.error and new_refresh_token not in report.error
    # the refused API call, the refused refresh: then nothing more
    assert [r.path for r in standin.log[before:]] == ["/api/v4/leads/pipelines", "/oauth2/access_token"]
    message = conn.execute(
        "select message from ops.extract_runs where connection_name = %s order by run_id desc limit 1",
        (name,),
    ).fetchone()[0]
    assert message == report.error

    # the person puts the new refresh token in the environment: the configuration wins
    monkeypatch.setenv(f"{name.upper()}_REFRESH_TOKEN", new_refresh_token)
    source = amo_source_from_env(source)
    again = run(conn, source, "incremental")
    assert again.error is None
    seeded = conn.execute("select seeded_from from ops.oauth_tokens where connection_name = %s", (name,))
    assert seeded.fetchone()[0] == hashlib.sha256(new_refresh_token.encode()).hexdigest()
    sent = [json.loads(r.body)["refresh_token"] for r in oauth_calls(standin)]
    assert sent[-1] == new_refresh_token and sent.count(new_refresh_token) == 1


def amo_source_from_env(source: AmoCRMSource) -> AmoCRMSource:
    """The same configuration read again (its secrets resolved from the environment anew)."""
    return AmoCRMSource.model_validate_json(source.model_dump_json())


def test_a_blocked_account_stops_at_the_first_403_without_retrying(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_blocked"
    forget(conn, name)
    standin = start(generate(11, 100))
    standin.guard.blocked = True
    report = run(conn, amo_source(name, standin, monkeypatch, long_lived=True), "incremental")
    assert report.error is not None and report.error.startswith(f"{name}: amoCRM answered 403 Forbidden")
    assert "support" in report.error
    assert len(standin.log) == 1 and report.stats.requests == 1


def test_a_refused_long_lived_token_names_the_variable_to_fix_and_never_its_value(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_llt"
    forget(conn, name)
    standin = start(generate(11, 100))
    source = amo_source(name, standin, monkeypatch, long_lived=True)
    monkeypatch.setenv("AMO_T_LLT_TOKEN", "expired-long-lived-token")
    report = run(conn, amo_source_from_env(source), "incremental")
    assert report.error is not None
    assert report.error.startswith(
        f"{name}: amoCRM refused the long-lived token on GET /api/v4/leads/pipelines"
    )
    assert "environment variable AMO_T_LLT_TOKEN" in report.error
    assert "expired-long-lived-token" not in report.error
    assert len(standin.log) == 1


def test_wrong_client_credentials_name_their_variables(
    conn: psycopg.Connection, start: Callable[..., AmoCRMStandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_client"
    forget(conn, name)
    standin = start(generate(11, 100))
    source = amo_source(name, standin, monkeypatch)
    monkeypatch.setenv("AMO_T_CLIENT_CLIENT_SECRET", "not-the-secret")
    report = run(conn, amo_source_from_env(source), "full")
    assert report.error is not None and "Client authentication failed" in report.error
    assert "AMO_T_CLIENT_CLIENT_ID" in report.error and "AMO_T_CLIENT_CLIENT_SECRET" in report.error
    assert "not-the-secret" not in report.error
    assert [r.path for r in standin.log] == ["/oauth2/access_token"]
    assert standin.oauth.generation == 0  # the configured refresh token was not spent


# -- bad records ----------------------------------------------------------------------------
class ServesBadRecords(AmoCRMStandIn):
    """Serves a few broken records among good ones (the same ones on every request)."""

    bad_lead: int = 0
    bad_contact: int = 0
    bad_event: str = "-"

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if response.status != 200 or request.path not in (
            "/api/v4/leads",
            "/api/v4/contacts",
            "/api/v4/events",
        ):
            return response
        payload = json.loads(response.body)
        records = next(iter(payload["_embedded"].values()))
        for i, record in enumerate(records):
            if record.get("id") == self.bad_lead:
                records[i] = {**record, "updated_at": "2026-10-01T10:00:00"}
            elif record.get("id") == self.bad_contact:
                records[i] = "контакт"
            elif request.path == "/api/v4/events" and record.get("id", "").startswith(self.bad_event):
                records[i] = {k: v for k, v in record.items() if k != "id"}
        return Response.json(200, payload, response.content_type)


def test_bad_records_are_rejected_with_a_reason_and_the_rest_land(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "amo_t_bad"
    forget(conn, name)
    world = generate(11, 300)
    standin = ServesBadRecords(world, WORLD_SOURCE, requests_per_second=FAST)
    standin.start()
    try:
        api = served(standin)
        lead, contact = sorted(api["leads"])[5], sorted(api["contacts"])[3]
        event = sorted(api["events"])[7]
        standin.bad_lead, standin.bad_contact, standin.bad_event = int(lead), int(contact), event
        report = run(conn, amo_source(name, standin, monkeypatch), "full")
    finally:
        standin.stop()

    assert report.error is None and report.status == "warning"
    assert report.rejects == {"leads": 1, "contacts": 1, "events": 1}
    rejects = conn.execute(
        "select entity, record_id, reason, payload from ops.rejects where connection_name = %s order by entity",
        (name,),
    ).fetchall()
    assert [(r[0], r[1]) for r in rejects] == [("contacts", None), ("events", None), ("leads", lead)]
    assert "not an object" in rejects[0][2] and rejects[0][3] == "контакт"
    assert "id is None" in rejects[1][2]
    assert rejects[2][2] == f"lead {lead}: updated_at is '2026-10-01T10:00:00', expected unix seconds"
    assert set(landed(conn, name, "leads")) == set(api["leads"]) - {lead}
    assert set(landed(conn, name, "contacts")) == set(api["contacts"]) - {contact}
    assert set(landed(conn, name, "events")) == set(api["events"]) - {event}
    assert landed(conn, name, "companies") == api["companies"]
    assert conn.execute(
        "select status, rejects from ops.extract_runs where connection_name = %s", (name,)
    ).fetchone() == ("warning", 3)  # fmt: skip


def test_the_package_lands_the_tables_dagster_declares() -> None:
    from dagster_project.defs.extract.assets import ENTITIES as DECLARED

    assert tuple(DECLARED["amocrm"]) == amocrm_package.ENTITIES
