"""amoCRM extraction against the API's own limit, and against a plain paging client.

    .venv/bin/python -m benchmarks.extract_amocrm [--deals 100000] [--seed 7]

A sandbox world of ``--deals`` deals (amoCRM holds about 40% of them) is served by the amoCRM
stand-in with its real limit (7 requests in any second, on a ``HybridClock`` shared with the
extractor's limiter: waiting is free, work is not). Three runs of the product's extractor, as
the product calls it (``run_connection``): a full load, an incremental run with nothing new,
and an incremental run after about 1% of the world's deals changed (``sandbox.world.advance``).
The same three loads by a plain client that pages with page numbers, follows ``_links.next``
and sleeps to keep 7 requests a second, landing each page with a plain upsert.

Figures: requests against the minimum the page sizes allow (250 records a page, 100 for
events, one request per list at least, one token refresh), and wall time against the time the
limit alone imposes on that minimum (``ceil(n / 7) - 1`` seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

import extractors.amocrm as amocrm_package
from benchmarks import common
from benchmarks.worlds import advance_by_share
from dwh.config.models import AmoCRMSource
from extractors.amocrm.extract import EVENTS_LIMIT, PAGE_LIMIT
from extractors.common.ratelimit import SlidingWindowLimiter
from extractors.common.runner import run_connection
from sandbox.amocrm import AmoCRMStandIn
from sandbox.amocrm.render import Rendered
from sandbox.world.generate import generate
from sandbox.world.model import World

WORLD_SOURCE = "amo_retail"
CONNECTION = "bench_amo"
RATE = 7


# -- the minimum and the bound ---------------------------------------------------------------------
def _pages(n: int, limit: int) -> int:
    return max(1, math.ceil(n / limit))


def minimum_requests(data: Rendered, since: int | None, token_refresh: bool) -> int:
    """The fewest requests that read every record changed after ``since`` (everything when
    None): each list at least once, full pages of 250 (events 100), the small dictionaries in
    one page each, and the OAuth token refresh when the run needs one."""

    def newer(records: list[dict[str, Any]], key: str = "updated_at") -> int:
        return len(records) if since is None else sum(1 for r in records if r[key] > since)

    return (
        3  # pipelines, loss reasons, users: one page each
        + _pages(newer(data.leads), PAGE_LIMIT)
        + _pages(newer(data.deleted_leads), PAGE_LIMIT)
        + _pages(newer(data.events, "created_at"), EVENTS_LIMIT)
        + _pages(newer(data.notes), PAGE_LIMIT)
        + _pages(newer(data.contacts), PAGE_LIMIT)
        + _pages(newer(data.companies), PAGE_LIMIT)
        + (1 if token_refresh else 0)
    )


def limit_bound(requests: int) -> float:
    """Seconds the limit alone imposes on ``requests``: 7 in any second."""
    return float(max(0, math.ceil(requests / RATE) - 1))


# -- the product's extractor -----------------------------------------------------------------------
@contextlib.contextmanager
def _extract_with(**options: Any) -> Iterator[None]:
    """The runner calls ``extractors.amocrm.extract``; give it the compressed clock's limiter."""
    original = amocrm_package.extract
    amocrm_package.extract = functools.partial(original, **options)  # type: ignore[assignment]
    try:
        yield
    finally:
        amocrm_package.extract = original  # type: ignore[assignment]


def product_source(standin: AmoCRMStandIn) -> AmoCRMSource:
    creds = standin.credentials()
    prefix = CONNECTION.upper()
    os.environ[f"{prefix}_CLIENT_ID"] = creds["AMO_RETAIL_CLIENT_ID"]
    os.environ[f"{prefix}_CLIENT_SECRET"] = creds["AMO_RETAIL_CLIENT_SECRET"]
    os.environ[f"{prefix}_REFRESH_TOKEN"] = creds["AMO_RETAIL_REFRESH_TOKEN"]
    return AmoCRMSource.model_validate(
        {
            "name": CONNECTION,
            "type": "amocrm",
            "base_url": standin.url,
            "auth": {
                "client_id": f"${{{prefix}_CLIENT_ID}}",
                "client_secret": f"${{{prefix}_CLIENT_SECRET}}",
                "refresh_token": f"${{{prefix}_REFRESH_TOKEN}}",
                "redirect_uri": standin.redirect_uri,
            },
        }
    )


def forget(conn: psycopg.Connection) -> None:
    for entity in amocrm_package.ENTITIES:
        if conn.execute("select to_regclass(%s)", (f"raw_amocrm.{entity}",)).fetchone()[0]:
            conn.execute(f"delete from raw_amocrm.{entity} where connection_name = %s", (CONNECTION,))
    for tbl in ("extract_cursors", "oauth_tokens", "rejects", "extract_runs"):
        conn.execute(f"delete from ops.{tbl} where connection_name = %s", (CONNECTION,))
    conn.execute("drop schema if exists bench_peer_amocrm cascade")


@dataclass
class Outcome:
    requests: int
    seconds: float
    records: int
    retries: int = 0
    limited: int = 0  # answers 429/403 from the stand-in's limit
    error: str | None = None
    waited: float = 0.0  # of ``seconds``, spent waiting for the limits (the rest is work)


def run_product(
    conn: psycopg.Connection,
    source: AmoCRMSource,
    standin: AmoCRMStandIn,
    clock: common.HybridClock,
    mode: str,
) -> Outcome:
    limiter = SlidingWindowLimiter(RATE, clock=clock.now, sleep=clock.sleep)
    before_log, before_outcomes = len(standin.log), len(standin.outcomes)
    started, skipped = clock.now(), clock.skipped
    with _extract_with(limiter=limiter):
        report = run_connection(source, conn, mode)  # type: ignore[arg-type]
    seconds = clock.now() - started
    limited = sum(1 for o in standin.outcomes[before_outcomes:] if o.limited)
    outcome = Outcome(len(standin.log) - before_log, seconds, sum(report.records.values()),
                   report.stats.retries, limited, report.error)  # fmt: skip
    outcome.waited = round(clock.skipped - skipped, 2)
    return outcome


# -- the peer: a plain paging client ---------------------------------------------------------------
PEER_LISTS: tuple[tuple[str, str, str, dict[str, str], str | None], ...] = (
    # (table, path, embedded key, params, incremental time field)
    ("pipelines", "/api/v4/leads/pipelines", "pipelines", {}, None),
    ("loss_reasons", "/api/v4/leads/loss_reasons", "loss_reasons", {"limit": "250"}, None),
    ("users", "/api/v4/users", "users", {"limit": "250"}, None),
    ("leads", "/api/v4/leads", "leads", {"with": "contacts,loss_reason", "limit": "250"}, "updated_at"),
    ("deleted_leads", "/api/v4/leads", "leads", {"with": "only_deleted", "limit": "250"}, "updated_at"),
    ("events", "/api/v4/events", "events", {"filter[type]": "lead_status_changed", "limit": "100"}, "created_at"),
    ("notes", "/api/v4/leads/notes", "notes", {"filter[note_type]": "common", "limit": "250"}, "updated_at"),
    ("contacts", "/api/v4/contacts", "contacts", {"limit": "250"}, "updated_at"),
    ("companies", "/api/v4/companies", "companies", {"limit": "250"}, "updated_at"),
)  # fmt: skip


class PlainPager:
    """What a user writes without the product: page=1, 2, ... following ``_links.next``, one
    request every 1/7 s (+2%, the product's margin too), a 429 waits a second and retries;
    incremental runs filter by the latest time seen in the previous run; OAuth like the product
    (one token refresh on the first run). Each page lands with
    ``insert ... on conflict do update``."""

    def __init__(self, standin: AmoCRMStandIn, conn: psycopg.Connection, clock: common.HybridClock):
        self.base_url, self.conn, self.clock = standin.url, conn, clock
        self.credentials = standin.credentials()
        self.redirect_uri = standin.redirect_uri
        self.http = httpx.Client(timeout=60)
        self.requests = 0
        self.retries = 0
        self.last_sent = -1e9
        self.high: dict[str, int] = {}
        conn.execute("create schema if not exists bench_peer_amocrm")
        for table, *_ in PEER_LISTS:
            conn.execute(
                f"create table if not exists bench_peer_amocrm.{table} (id text primary key, record jsonb not null)"
            )

    def _get(self, url: str, params: dict[str, str] | None) -> httpx.Response:
        while True:
            wait = self.last_sent + 1.02 / RATE - self.clock.now()
            self.clock.sleep(wait)
            self.last_sent = self.clock.now()
            self.requests += 1
            response = self.http.get(url, params=params)
            if response.status_code == 429:
                self.retries += 1
                self.clock.sleep(1.0)
                continue
            response.raise_for_status()
            return response

    def authorise(self) -> None:
        """Trade the refresh token for an access token (once: it lives a day)."""
        self.clock.sleep(self.last_sent + 1.02 / RATE - self.clock.now())
        self.last_sent = self.clock.now()
        self.requests += 1
        response = self.http.post(
            self.base_url + "/oauth2/access_token",
            json={
                "client_id": self.credentials["AMO_RETAIL_CLIENT_ID"],
                "client_secret": self.credentials["AMO_RETAIL_CLIENT_SECRET"],
                "grant_type": "refresh_token",
                "refresh_token": self.credentials["AMO_RETAIL_REFRESH_TOKEN"],
                "redirect_uri": self.redirect_uri,
            },
        )
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def read(self, incremental: bool) -> int:
        if "Authorization" not in self.http.headers:
            self.authorise()
        landed = 0
        for table, path, key, params, time_field in PEER_LISTS:
            query = dict(params)
            if incremental and time_field and table in self.high:
                query[f"filter[{time_field}][from]"] = str(self.high[table] + 1)
            url: str | None = self.base_url + path
            first = True
            while url:
                response = self._get(url, query if first else None)
                first = False
                if response.status_code == 204:
                    break
                body = response.json()
                records = body["_embedded"][key]
                landed += self._land(table, records)
                if time_field:
                    self.high[table] = max([self.high.get(table, 0), *(r[time_field] for r in records)])
                url = body.get("_links", {}).get("next", {}).get("href")
        return landed

    def _land(self, table: str, records: list[dict[str, Any]]) -> int:
        import json

        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                f"""insert into bench_peer_amocrm.{table} (id, record) values (%s, %s::jsonb)
                    on conflict (id) do update set record = excluded.record""",
                [(str(r["id"]), json.dumps(r, ensure_ascii=False)) for r in records],
            )
        return len(records)


def run_peer(
    pager: PlainPager, standin: AmoCRMStandIn, clock: common.HybridClock, incremental: bool
) -> Outcome:
    before_log, before_outcomes = len(standin.log), len(standin.outcomes)
    retries = pager.retries
    started, skipped = clock.now(), clock.skipped
    records = pager.read(incremental)
    seconds = clock.now() - started
    limited = sum(1 for o in standin.outcomes[before_outcomes:] if o.limited)
    outcome = Outcome(len(standin.log) - before_log, seconds, records, pager.retries - retries, limited)
    outcome.waited = round(clock.skipped - skipped, 2)
    return outcome


# -- the benchmark ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--change-share", type=float, default=0.01)
    args = parser.parse_args(argv)

    common.banner(f"amoCRM extraction, {args.deals:,} deals in the world")
    common.use_private_warehouse()
    facts = common.machine_facts()
    with common.Stopwatch() as sw:
        world: World = generate(args.seed, args.deals)
    print(f"world generated in {sw.seconds:.1f} s", flush=True)

    clock = common.HybridClock()
    ours = AmoCRMStandIn(world, WORLD_SOURCE, clock=clock.now)
    theirs = AmoCRMStandIn(world, WORLD_SOURCE, clock=clock.now)
    ours.start()
    theirs.start()
    rows: list[dict[str, Any]] = []
    try:
        with common.connect() as conn:
            forget(conn)
            source = product_source(ours)
            pager = PlainPager(theirs, conn, clock)

            def measure(load: str, since: int | None, incremental: bool, refresh: bool) -> None:
                data = ours.rendered()  # render outside the timing (the real API has it ready)
                theirs.rendered()
                minimum = minimum_requests(data, since, refresh)
                bound = limit_bound(minimum)
                mine = run_product(conn, source, ours, clock, "incremental" if incremental else "full")
                peer = run_peer(pager, theirs, clock, incremental)
                row = {
                    "load": load,
                    "leads": len(data.leads),
                    "events": len(data.events),
                    "minimum_requests": minimum,
                    "bound_seconds": bound,
                    "product": vars(mine),
                    "peer": vars(peer),
                }
                rows.append(row)
                print(
                    f"{load}: minimum {minimum} requests, bound {bound:.0f} s | product {mine.requests} req "
                    f"({common.ratio(mine.requests, minimum)}x), {mine.seconds:.1f} s "
                    f"({common.ratio(mine.seconds, bound)}x), retries {mine.retries}, refused {mine.limited}"
                    f"{', ERROR ' + mine.error if mine.error else ''} | plain pager {peer.requests} req, "
                    f"{peer.seconds:.1f} s, refused {peer.limited}",
                    flush=True,
                )

            measure("full load", None, incremental=False, refresh=True)
            measure("no-change incremental", int(world.now.timestamp()), incremental=True, refresh=False)
            with ours.lock, theirs.lock:
                change = advance_by_share(world, args.change_share, seed=args.seed)
            since = int(change.before.timestamp())
            print(f"world advanced {change.days:g} day(s): {change.changed:,} deals changed "
                  f"({change.changed / len(world.deals):.2%}), {change.in_source(WORLD_SOURCE):,} in amoCRM",
                  flush=True)  # fmt: skip
            measure(f"{change.changed / len(world.deals):.1%}-change incremental", since, True, False)
    finally:
        ours.stop()
        theirs.stop()

    print()
    print(render_table(rows))
    result = {"benchmark": "extract_amocrm", "deals": args.deals, "seed": args.seed, "machine": facts,
              "load_after": common.load_note(), "runs": rows}  # fmt: skip
    common.save("extract_amocrm", result)
    return result


def render_table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        p, q = r["product"], r["peer"]
        body.append([
            r["load"], r["minimum_requests"], p["requests"], common.ratio(p["requests"], r["minimum_requests"]),
            f"{r['bound_seconds']:.0f}", f"{p['seconds']:.1f}", common.ratio(p["seconds"], r["bound_seconds"]),
            q["requests"], f"{q['seconds']:.1f}", common.ratio(p["requests"], q["requests"]),
            common.ratio(p["seconds"], q["seconds"]),
        ])  # fmt: skip
    return common.table(
        ["load", "min req", "req", "req/min", "bound s", "wall s", "wall/bound", "peer req", "peer wall s",
         "req vs peer", "wall vs peer"],
        body,
    )  # fmt: skip


if __name__ == "__main__":
    main()
