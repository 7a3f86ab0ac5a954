"""Bitrix24 extraction against the portal's own limits, and against ``fast_bitrix24``.

    .venv/bin/python -m benchmarks.extract_bitrix24 [--deals 100000] [--seed 7] [--no-peer]

A sandbox world of ``--deals`` deals (Bitrix24 holds about 35% of them) is served by the
Bitrix24 stand-in with the portal's limits: a leaky bucket of 50 requests draining 2 a second,
and each method's operating time capped at 480 s in any 10 minutes. The stand-in, the
extractor's limiter and its waits share a ``HybridClock`` (waiting is free, work is not).
Three runs of the product's extractor as the product calls it (``run_connection``): a full
load, an incremental run with nothing new, an incremental run after about 1% of the world's
deals changed. The same three loads by ``fast_bitrix24`` (``get_all`` for every list, ``call``
for the dictionaries and the timeline comments of lost deals), on an asyncio loop driven by
the same clock, each list landed with a plain upsert.

Figures: requests against the minimum (every list page of 50 rows including each list's last
short page, one command per dictionary call and per owed deal's comments, 50 commands to a
batch request; and at least one request after the deals, since which lost deals are owed a
comment read is known only from them), and wall time against the time the limits alone impose on that minimum: the
leaky bucket's ``(n - 50) / 2`` seconds, or, when larger, the operating-time limit's
``600 * (ceil(c / 480) - 1)`` seconds for a method whose calls cost ``c`` seconds in all.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

import extractors.bitrix24 as b24_package
from benchmarks import common
from benchmarks.virtual_asyncio import InFlight, VirtualLoop, monotonic_shim
from benchmarks.worlds import advance_by_share
from dwh.config.models import Bitrix24Source
from extractors.bitrix24.extract import Tuning
from extractors.common.runner import run_connection
from sandbox.bitrix24.limits import CostModel
from sandbox.bitrix24.render import Portal
from sandbox.bitrix24.server import Bitrix24StandIn
from sandbox.world.generate import generate

WORLD_SOURCE = "b24_wholesale"
CONNECTION = "bench_b24"
PAGE, BATCH, BURST, DRAIN = 50, 50, 50, 2.0
BUDGET, WINDOW = 480.0, 600.0


# -- the portal rendered before a run (what a real portal has ready) --------------------------------
def warm(standin: Bitrix24StandIn) -> Portal:
    """The stand-in's portal at the world's current state, every family rendered, so a run's
    requests do not pay for it (the stand-in keeps one rendering per world version)."""
    portal = standin.portal()
    for family in ("users", "categories", "statuses", "deal_fields", "deals", "stage_history",
                   "timeline_comments", "companies", "contacts", "requisites"):  # fmt: skip
        getattr(portal, family)
    return portal


# -- the minimum and the bound -------------------------------------------------------------------
def _pages(rows: int) -> int:
    return rows // PAGE + 1  # a list ends at its first short page


def _modified(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["DATE_MODIFY"])


@dataclass
class Minimum:
    requests: int
    costs: dict[str, float]  # method -> operating seconds of the minimal read

    @property
    def bound(self) -> float:
        bucket = max(0.0, (self.requests - BURST) / DRAIN)
        operating = max((WINDOW * (math.ceil(c / BUDGET) - 1) for c in self.costs.values() if c), default=0.0)
        return max(bucket, operating)


def minimum(portal: Any, since: datetime | None, history_after: int, costs: CostModel) -> Minimum:
    """The fewest batch requests that read what changed after ``since`` (everything when None)
    and the stage history above ID ``history_after``."""

    def changed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows if since is None else [r for r in rows if _modified(r) > since]

    deals = changed(portal.deals)
    history = [h for h in portal.stage_history if int(h["ID"]) > history_after]
    requisites = changed(portal.requisites)
    lists = {
        "crm.deal.list": [len(deals)],
        "crm.stagehistory.list": [len(history)],
        "crm.company.list": [len(changed(portal.companies))],
        "crm.contact.list": [len(changed(portal.contacts))],
        "crm.requisite.list": [
            sum(1 for r in requisites if r["ENTITY_TYPE_ID"] == "4"),
            sum(1 for r in requisites if r["ENTITY_TYPE_ID"] == "3"),
        ],  # fmt: skip
    }
    commands = 0
    cost: dict[str, float] = {}
    for method, sizes in lists.items():
        for rows in sizes:
            pages = _pages(rows)
            commands += pages
            cost[method] = cost.get(method, 0.0) + pages * costs.per_call + rows * costs.per_row
    owed = [d for d in deals if d["STAGE_SEMANTIC_ID"] == "F" and not (d["COMMENTS"] or "").strip()]
    comment_commands = 0
    for d in owed:
        rows = len(portal.timeline_comments.get(d["ID"], []))
        comment_commands += _pages(rows)
        cost["crm.timeline.comment.list"] = cost.get("crm.timeline.comment.list", 0.0) + costs.cost(rows)
    commands += (
        comment_commands + 1 + len(portal.categories) + 1 + _pages(len(portal.users))
    )  # + dictionaries
    # which deals are owed comments is known only once the deals are read: comments cannot
    # ride in the first request
    after_deals = 1 + math.ceil(comment_commands / BATCH) if comment_commands else 1
    return Minimum(max(math.ceil(commands / BATCH), after_deals), cost)


# -- the product's extractor ---------------------------------------------------------------------
@contextlib.contextmanager
def _extract_with(tuning: Tuning) -> Iterator[None]:
    original = b24_package.extract
    b24_package.extract = functools.partial(original, tuning=tuning)  # type: ignore[assignment]
    try:
        yield
    finally:
        b24_package.extract = original  # type: ignore[assignment]


def product_source(standin: Bitrix24StandIn) -> Bitrix24Source:
    variable = f"{CONNECTION.upper()}_WEBHOOK"
    os.environ[variable] = standin.webhook_url
    return Bitrix24Source(name=CONNECTION, type="bitrix24", webhook_url=f"${{{variable}}}",
                          portal_url=standin.url)  # fmt: skip


def forget(conn: psycopg.Connection) -> None:
    for entity in b24_package.ENTITIES:
        if conn.execute("select to_regclass(%s)", (f"raw_bitrix24.{entity}",)).fetchone()[0]:
            conn.execute(f"delete from raw_bitrix24.{entity} where connection_name = %s", (CONNECTION,))
    for tbl in ("extract_cursors", "rejects", "extract_runs"):
        conn.execute(f"delete from ops.{tbl} where connection_name = %s", (CONNECTION,))
    conn.execute("drop schema if exists bench_peer_bitrix24 cascade")


@dataclass
class Outcome:
    requests: int
    seconds: float
    records: int
    retries: int = 0
    refused: int = 0  # 503 QUERY_LIMIT_EXCEEDED / 429 OPERATION_TIME_LIMIT answers or commands
    error: str | None = None
    waited: float = 0.0  # of ``seconds``, spent waiting for the limits (the rest is work)


def _counts(standin: Bitrix24StandIn) -> tuple[int, int]:
    return len(standin.log), len(standin.accepted_at)


def _refused(standin: Bitrix24StandIn, before: tuple[int, int]) -> int:
    """Requests the leaky bucket refused (503 QUERY_LIMIT_EXCEEDED) since ``before``."""
    sent, accepted = _counts(standin)
    return (sent - before[0]) - (accepted - before[1])


def run_product(
    conn: psycopg.Connection,
    source: Bitrix24Source,
    standin: Bitrix24StandIn,
    clock: common.HybridClock,
    mode: str,
) -> Outcome:
    before = _counts(standin)
    tuning = Tuning(clock=clock.now, sleep=clock.sleep)
    started, skipped = clock.now(), clock.skipped
    with _extract_with(tuning):
        report = run_connection(source, conn, mode)  # type: ignore[arg-type]
    seconds = clock.now() - started
    outcome = Outcome(len(standin.log) - before[0], seconds, sum(report.records.values()), report.stats.retries,
                   _refused(standin, before), report.error)  # fmt: skip
    outcome.waited = round(clock.skipped - skipped, 2)
    return outcome


# -- the peer: fast_bitrix24 -----------------------------------------------------------------------
PEER_LISTS: tuple[tuple[str, str, dict[str, Any], str | None], ...] = (
    # (table, method, params, incremental filter field)
    ("deals", "crm.deal.list", {"select": ["*", "UF_*"]}, ">DATE_MODIFY"),
    ("stage_history", "crm.stagehistory.list", {"entityTypeId": 2}, ">ID"),
    ("companies", "crm.company.list", {"select": ["*", "UF_*"]}, ">DATE_MODIFY"),
    ("contacts", "crm.contact.list", {"select": ["*", "UF_*", "PHONE", "EMAIL"]}, ">DATE_MODIFY"),
    ("requisites", "crm.requisite.list", {}, ">DATE_MODIFY"),
    ("categories", "crm.category.list", {"entityTypeId": 2}, None),
    ("users", "user.get", {}, None),
)


class FastBitrixPeer:
    """What a user writes with fast_bitrix24: ``get_all`` for every list (incremental runs
    filter by the latest DATE_MODIFY / ID seen), ``call`` for the stages of each funnel, the
    field descriptions and the timeline comments of lost deals without a comment."""

    def __init__(
        self,
        webhook: str,
        conn: psycopg.Connection,
        clock: common.HybridClock,
        concurrency: int | None = None,
    ):
        import fast_bitrix24.throttle

        fast_bitrix24.throttle.time = monotonic_shim(clock)  # type: ignore[attr-defined]
        self.webhook, self.conn, self.clock = webhook, conn, clock
        self.concurrency = concurrency  # None: the library's default (up to 50 requests at once)
        self.inflight = InFlight()
        self.high: dict[str, str] = {}
        conn.execute("create schema if not exists bench_peer_bitrix24")
        for table in ("deals", "stage_history", "companies", "contacts", "requisites", "categories", "users",
                      "statuses", "deal_fields", "timeline_comments"):  # fmt: skip
            conn.execute(f"create table if not exists bench_peer_bitrix24.{table} "
                         "(id text primary key, record jsonb not null)")  # fmt: skip

    def run(self, incremental: bool) -> int:
        loop = VirtualLoop(self.clock, self.inflight)
        try:
            return loop.run_until_complete(self._run(incremental))
        finally:
            loop.close()

    async def _run(self, incremental: bool) -> int:
        from fast_bitrix24 import BitrixAsync

        async with self.inflight.session(raise_for_status=True) as http:
            bx = BitrixAsync(self.webhook, verbose=False, client=http)
            with contextlib.ExitStack() as stack:
                if self.concurrency is not None:  # the library's own remedy for limit errors
                    stack.enter_context(bx.slow(self.concurrency))
                return await self._read(bx, incremental)

    async def _read(self, bx: Any, incremental: bool) -> int:
        landed = 0
        rows: dict[str, list[dict[str, Any]]] = {}
        for table, method, params, field in PEER_LISTS:
            query = dict(params)
            if incremental and field and table in self.high:
                query["filter"] = {field: self.high[table]}
            result = await bx.get_all(method, query)
            if isinstance(result, dict):  # crm.category.list: {"categories": [...]}
                result = next(iter(result.values()))
            rows[table] = list(result)
            landed += self._land(table, rows[table], "id" if table == "categories" else "ID")
            if field and rows[table]:
                key = "ID" if field == ">ID" else "DATE_MODIFY"
                values = [r[key] for r in rows[table]]
                top = max(values, key=int) if key == "ID" else max(values, key=datetime.fromisoformat)
                self.high[table] = str(top)
        funnels = [{"filter": {"ENTITY_ID": "DEAL_STAGE" if str(c["id"]) == "0" else f"DEAL_STAGE_{c['id']}"}}
                   for c in rows["categories"]]  # fmt: skip
        if not any(str(c["id"]) == "0" for c in rows["categories"]):
            funnels.append({"filter": {"ENTITY_ID": "DEAL_STAGE"}})
        statuses = await bx.call("crm.status.list", funnels)
        landed += self._land("statuses", _flatten(statuses), "ID")
        fields = await bx.call("crm.deal.fields", None, raw=True)
        fields = fields.get("result", fields) if isinstance(fields, dict) else fields
        landed += self._land("deal_fields", [{"ID": k, **v} for k, v in fields.items()], "ID")
        owed = [
            d["ID"]
            for d in rows["deals"]
            if d["STAGE_SEMANTIC_ID"] == "F" and not (d["COMMENTS"] or "").strip()
        ]
        if owed:
            comments = await bx.call("crm.timeline.comment.list",
                                     [{"filter": {"ENTITY_ID": i, "ENTITY_TYPE": "deal"}} for i in owed])  # fmt: skip
            landed += self._land("timeline_comments", _flatten(comments), "ID")
        return landed

    def _land(self, table: str, records: list[dict[str, Any]], key: str) -> int:
        with self.conn.transaction(), self.conn.cursor() as cur:
            for chunk in common.iterate_chunks(records, 2000):
                cur.executemany(
                    f"""insert into bench_peer_bitrix24.{table} (id, record) values (%s, %s::jsonb)
                        on conflict (id) do update set record = excluded.record""",
                    [(str(r[key]), json.dumps(r, ensure_ascii=False)) for r in chunk],
                )
        return len(records)


def _flatten(result: Any) -> list[dict[str, Any]]:
    """``call`` answers a list of per-call results, each a list (or one dict)."""
    if isinstance(result, dict):
        result = [result]
    out: list[dict[str, Any]] = []
    for item in result:
        if isinstance(item, list):
            out.extend(x for x in item if isinstance(x, dict))
        elif isinstance(item, dict):
            out.append(item)
    return out


def run_peer(
    peer: FastBitrixPeer, standin: Bitrix24StandIn, clock: common.HybridClock, incremental: bool
) -> Outcome:
    before = _counts(standin)
    started, skipped = clock.now(), clock.skipped
    error = None
    records = 0
    try:
        records = peer.run(incremental)
    except Exception as exc:  # the peer's own failure is a result, not a crash of the benchmark
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    seconds = clock.now() - started
    outcome = Outcome(len(standin.log) - before[0], seconds, records, 0, _refused(standin, before), error)
    outcome.waited = round(clock.skipped - skipped, 2)
    return outcome


# -- the benchmark ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--change-share", type=float, default=0.01)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--peer-concurrency", type=int, default=None,
                        help="fast_bitrix24's slow(N) mode: at most N requests at once (default: the library's 50)")  # fmt: skip
    parser.add_argument("--operating", choices=("on", "off"), default="on",
                        help="off: no operating-time limit (the leaky bucket only), for both clients")  # fmt: skip
    args = parser.parse_args(argv)

    common.banner(
        f"Bitrix24 extraction, {args.deals:,} deals in the world, operating-time limit {args.operating}"
    )
    common.use_private_warehouse()
    facts = common.machine_facts()
    with common.Stopwatch() as sw:
        world = generate(args.seed, args.deals)
    print(f"world generated in {sw.seconds:.1f} s", flush=True)

    clock = common.HybridClock()
    budget = BUDGET if args.operating == "on" else 1e12
    costs = CostModel()
    ours = Bitrix24StandIn(world, WORLD_SOURCE, clock=clock.now, operating_budget=budget, costs=costs)
    theirs = Bitrix24StandIn(world, WORLD_SOURCE, clock=clock.now, operating_budget=budget, costs=costs)
    ours.start()
    theirs.start()
    rows: list[dict[str, Any]] = []
    try:
        with common.connect() as conn:
            forget(conn)
            source = product_source(ours)
            peer = FastBitrixPeer(theirs.webhook_url, conn, clock, args.peer_concurrency)

            def measure(load: str, since: datetime | None, history_after: int, incremental: bool) -> None:
                portal = warm(ours)
                warm(theirs)
                least = minimum(portal, since, history_after, costs)
                bound = least.bound if args.operating == "on" else max(0.0, (least.requests - BURST) / DRAIN)
                mine = run_product(conn, source, ours, clock, "incremental" if incremental else "full")
                theirs_outcome = (Outcome(0, 0.0, 0, error="not run") if args.no_peer
                                  else run_peer(peer, theirs, clock, incremental))  # fmt: skip
                row = {"load": load, "deals": len(portal.deals), "stage_history": len(portal.stage_history),
                       "minimum_requests": least.requests, "operating_costs": least.costs,
                       "bound_seconds": bound, "product": vars(mine), "peer": vars(theirs_outcome)}  # fmt: skip
                rows.append(row)
                print(f"{load}: minimum {least.requests} requests, bound {bound:.0f} s | product {mine.requests} req "
                      f"({common.ratio(mine.requests, least.requests)}x), {mine.seconds:.1f} s "
                      f"({common.ratio(mine.seconds, bound)}x), retries {mine.retries}, refused {mine.refused}"
                      f"{', ERROR ' + mine.error if mine.error else ''} | fast_bitrix24 {theirs_outcome.requests} "
                      f"req, {theirs_outcome.seconds:.1f} s, refused {theirs_outcome.refused}"
                      f"{', ERROR ' + theirs_outcome.error if theirs_outcome.error else ''}", flush=True)  # fmt: skip

            measure("full load", None, 0, incremental=False)
            measure("no-change incremental", world.now, 10**18, incremental=True)
            history_top = max(int(h["ID"]) for h in warm(ours).stage_history)
            with ours.lock, theirs.lock:
                change = advance_by_share(world, args.change_share, seed=args.seed)
            print(f"world advanced {change.days:g} day(s): {change.changed:,} deals changed "
                  f"({change.changed / len(world.deals):.2%}), {change.in_source(WORLD_SOURCE):,} in Bitrix24",
                  flush=True)  # fmt: skip
            measure(
                f"{change.changed / len(world.deals):.1%}-change incremental",
                change.before,
                history_top,
                True,
            )
    finally:
        ours.stop()
        theirs.stop()

    print()
    print(render_table(rows))
    result = {"benchmark": "extract_bitrix24", "deals": args.deals, "seed": args.seed, "operating": args.operating,
              "peer_concurrency": args.peer_concurrency,
              "machine": facts, "load_after": common.load_note(), "runs": rows}  # fmt: skip
    suffix = f"_peer_slow{args.peer_concurrency}" if args.peer_concurrency else ""
    common.save(f"extract_bitrix24_operating_{args.operating}{suffix}", result)
    return result


def render_table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        p, q = r["product"], r["peer"]
        peer_req = q["requests"] if not q["error"] else f"{q['requests']} (failed)"
        body.append([
            r["load"], r["minimum_requests"], p["requests"], common.ratio(p["requests"], r["minimum_requests"]),
            f"{r['bound_seconds']:.0f}", f"{p['seconds']:.1f}", common.ratio(p["seconds"], r["bound_seconds"]),
            peer_req, f"{q['seconds']:.1f}", common.ratio(p["requests"], q["requests"]),
            common.ratio(p["seconds"], q["seconds"]),
        ])  # fmt: skip
    return common.table(
        ["load", "min req", "req", "req/min", "bound s", "wall s", "wall/bound", "peer req", "peer wall s",
         "req vs peer", "wall vs peer"],
        body,
    )  # fmt: skip


if __name__ == "__main__":
    main()
