"""1C extraction: requests against the minimum OData paging allows.

    .venv/bin/python -m benchmarks.extract_onec [--deals 100000] [--seed 7] [--page-size 1000]

A sandbox world of ``--deals`` deals (1C holds about 25% of them) served by the 1C OData
stand-in. The product's extractor runs as the product calls it (``run_connection``) with its
own pace (10 requests a second, a limit the product keeps, not one 1C imposes) on a
``HybridClock``: a full load, an incremental run with nothing new, an incremental run after
about 1% of the world's deals changed.

The minimum, per run:
- full: every set paged with ``$top``/``$skip`` of ``page_size`` (a set ends at its first
  short page: ``n // page_size + 1`` requests).
- incremental: 1C has no change feed and ``DataVersion`` cannot be filtered on, so each
  catalog's keys must be listed (pages of ``10 x page_size`` keys), the registers asked once
  each for their recent rows, and the changed records read by key, the changed deals'
  register rows likewise by deal key, as many keys a request as fit a query string under
  IIS's default limit of 2,048 characters (27 ``Ref_Key`` clauses, 18 ``Сделка_Key`` ones:
  the Cyrillic name is percent-encoded).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psycopg

import extractors.onec as onec_package
from benchmarks import common
from benchmarks.worlds import advance_by_share
from dwh.config.models import OneCSource
from extractors.common.runner import run_connection
from extractors.onec.client import OneCClient
from extractors.onec.sets import ALL_SETS, CATALOGS
from sandbox.onec.server import OneCStandIn
from sandbox.world.generate import generate

WORLD_SOURCE = "erp"
CONNECTION = "bench_onec"
# a request by keys must keep its query string under IIS's default 2,048 characters: about
# 1,800 for the $filter, the rest for $format, $select and the path
FILTER_BUDGET = 1800
PACE = 10.0  # the extractor's own requests per second


def snapshot(base: OneCStandIn) -> dict[str, dict[str, Any]]:
    """Every set's rows as the base serves them now, keyed as they land (rendered here, outside
    the timing, as a real base has its tables ready; the stand-in keeps them per world version)."""
    out: dict[str, dict[str, Any]] = {}
    for entity_set in ALL_SETS:
        rows = base.rows(entity_set.set_name)
        if entity_set in CATALOGS:
            out[entity_set.entity] = {r["Ref_Key"]: r for r in rows}
        else:
            out[entity_set.entity] = {entity_set.record_id(r): r for r in rows}  # type: ignore[attr-defined]
    return out


def requests_by_key(keys: int, field: str) -> int:
    """Requests that read ``keys`` records by ``<field> eq guid'…' or …`` within the budget."""
    clause = len(quote(f"{field} eq guid'00000000-0000-0000-0000-000000000000'", safe="$,'():")) + len(
        "%20or%20"
    )
    return math.ceil(keys / max(1, FILTER_BUDGET // clause))


def minimum_full(snap: dict[str, dict[str, Any]], page: int) -> int:
    return sum(len(rows) // page + 1 for rows in snap.values())


def minimum_incremental(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], page: int
) -> int:
    key_page = page * 10
    total = 0
    for entity_set in CATALOGS:
        rows = after[entity_set.entity]
        total += len(rows) // key_page + 1
        changed = sum(1 for k, r in rows.items() if before[entity_set.entity].get(k) != r)
        total += requests_by_key(changed, "Ref_Key")
    total += 2  # the registers' recent rows: stage statistics, exchange rates
    deals_changed = sum(1 for k, r in after["deals"].items() if before["deals"].get(k) != r)
    return total + requests_by_key(deals_changed, "Сделка_Key")  # the changed deals' register rows


@contextlib.contextmanager
def _extract_with(client: OneCClient) -> Iterator[None]:
    original = onec_package.extract
    onec_package.extract = functools.partial(original, client=client)  # type: ignore[assignment]
    try:
        yield
    finally:
        onec_package.extract = original  # type: ignore[assignment]


def forget(conn: psycopg.Connection) -> None:
    for entity in onec_package.ENTITIES:
        if conn.execute("select to_regclass(%s)", (f"raw_onec.{entity}",)).fetchone()[0]:
            conn.execute(f"delete from raw_onec.{entity} where connection_name = %s", (CONNECTION,))
    for tbl in ("extract_cursors", "rejects", "extract_runs"):
        conn.execute(f"delete from ops.{tbl} where connection_name = %s", (CONNECTION,))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--change-share", type=float, default=0.01)
    args = parser.parse_args(argv)

    common.banner(f"1C extraction, {args.deals:,} deals in the world")
    common.use_private_warehouse()
    facts = common.machine_facts()
    world = generate(args.seed, args.deals)
    clock = common.HybridClock()
    base = OneCStandIn(world, WORLD_SOURCE, clock=clock.now)
    base.start()
    for name, value in base.credentials().items():
        os.environ[name] = value
    user_var, password_var = base.credentials()
    source = OneCSource(name=CONNECTION, type="onec", base_url=base.base_url, username=f"${{{user_var}}}",
                        password=f"${{{password_var}}}", page_size=args.page_size)  # fmt: skip
    rows: list[dict[str, Any]] = []

    def measure(load: str, minimum: int, mode: str) -> None:
        before = len(base.log)
        started = clock.now()
        with OneCClient(source, clock=clock.now, sleep=clock.sleep) as client, _extract_with(client):
            report = run_connection(source, conn, mode)  # type: ignore[arg-type]
        seconds = clock.now() - started
        requests = len(base.log) - before
        pace = max(0.0, (minimum - 1) / PACE)
        rows.append({"load": load, "minimum_requests": minimum, "requests": requests, "seconds": seconds,
                     "pace_bound_seconds": pace, "records": sum(report.records.values()),
                     "retries": report.stats.retries, "error": report.error})  # fmt: skip
        print(f"{load}: minimum {minimum} requests | product {requests} ({common.ratio(requests, minimum)}x), "
              f"{seconds:.1f} s against {pace:.1f} s at its own pace of 10/s, {sum(report.records.values()):,} "
              f"records{', ERROR ' + report.error if report.error else ''}", flush=True)  # fmt: skip

    try:
        with common.connect() as conn:
            forget(conn)
            snap = snapshot(base)
            print("served: " + ", ".join(f"{k} {len(v):,}" for k, v in snap.items()), flush=True)
            measure("full load", minimum_full(snap, args.page_size), "full")
            measure("no-change incremental", minimum_incremental(snap, snap, args.page_size), "incremental")
            with base.lock:
                change = advance_by_share(world, args.change_share, seed=args.seed)
            after = snapshot(base)
            print(f"world advanced {change.days:g} day(s): {change.changed:,} deals changed, "
                  f"{change.in_source(WORLD_SOURCE):,} in 1C", flush=True)  # fmt: skip
            share = change.changed / len(world.deals)
            measure(f"{share:.1%}-change incremental", minimum_incremental(snap, after, args.page_size),
                    "incremental")  # fmt: skip
    finally:
        base.stop()

    print()
    print(common.table(
        ["load", "min req", "req", "req/min", "wall s", "records"],
        [[r["load"], r["minimum_requests"], r["requests"], common.ratio(r["requests"], r["minimum_requests"]),
          f"{r['seconds']:.1f}", f"{r['records']:,}"] for r in rows],
    ))  # fmt: skip
    result = {"benchmark": "extract_onec", "deals": args.deals, "seed": args.seed, "page_size": args.page_size,
              "machine": facts, "load_after": common.load_note(), "runs": rows}  # fmt: skip
    common.save("extract_onec", result)
    return result


if __name__ == "__main__":
    main()
