"""The warehouse at scale: raw landing, a full dbt build, 1% of deals changed, an incremental build.

    .venv/bin/python -m benchmarks.scale [--deals 1000000] [--seed 7] [--keep]

Steps, each timed with its peak memory (this process's RSS, or dbt's process tree, and the
warehouse server's PSS):
1. generate the sandbox world of ``--deals`` deals;
2. land it in the raw tables by the bulk path (``benchmarks.bulk_landing``: the stand-ins' own
   renderings, COPY-ed in) and write the demo configuration into ``config.*``;
3. ``dbt build --full-refresh`` (every model, data test and unit test);
4. advance the world until about 1% of its deals changed, and land the change as extraction
   would (changed records upserted, vanished ones marked deleted);
5. ``dbt build`` (incremental models pick up the change).
Then the warehouse's size on disk, per schema. dbt writes into its own target folder under
the benchmark's data directory, never the project's ``dbt/target``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.bulk_landing import land_world, reland_world
from benchmarks.worlds import advance_by_share
from sandbox.bulk import urls_for
from sandbox.world.generate import generate

DBT_DIR = common.PROJECT_ROOT / "dbt"
PLACEHOLDER_SECRETS = {  # the demo configuration names them; nothing here connects to a CRM
    "AMO_RETAIL_CLIENT_ID": "bench", "AMO_RETAIL_CLIENT_SECRET": "bench", "AMO_RETAIL_REFRESH_TOKEN": "bench",
    "B24_WHOLESALE_WEBHOOK": "http://127.0.0.1:1/rest/1/bench/", "ONEC_USER": "bench", "ONEC_PASSWORD": "bench",
    "TELEGRAM_BOT_TOKEN": "1:bench", "MEGAPLAN_TOKEN": "bench", "CREATIO_USER": "bench", "CREATIO_PASSWORD": "bench",
    "RBS_USER": "bench", "RBS_PASSWORD": "bench",
}  # fmt: skip


def dbt(
    args: list[str], target_path: Path
) -> tuple[subprocess.CompletedProcess[str], common.PeakMemory, float]:
    from dwh.warehouse import dbt_env, target

    env = {**os.environ, **dbt_env(target()), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(DBT_DIR), "--project-dir",
               str(DBT_DIR), "--target-path", str(target_path), "--log-path", str(target_path / "logs")]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=DBT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    with common.PeakMemory(pid=process.pid) as memory:
        out, _ = process.communicate()
    seconds = time.monotonic() - started
    return subprocess.CompletedProcess(command, process.returncode, out, ""), memory, seconds


def slowest_nodes(target_path: Path, n: int = 8) -> list[tuple[str, float]]:
    path = target_path / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text())["results"]
    timed = sorted(
        ((r["unique_id"].split(".", 2)[-1], r["execution_time"]) for r in results), key=lambda x: -x[1]
    )
    return [(name, round(t, 1)) for name, t in timed[:n]]


def model_seconds(target_path: Path) -> dict[str, float]:
    """Seconds per model in dbt's last run, slowest first."""
    path = target_path / "run_results.json"
    if not path.exists():
        return {}
    results = json.loads(path.read_text())["results"]
    timed = [
        (r["unique_id"].split(".")[-1], r["execution_time"])
        for r in results
        if r["unique_id"].startswith("model.")
    ]
    return {name: round(t, 2) for name, t in sorted(timed, key=lambda x: -x[1])}


def time_by_kind(target_path: Path) -> dict[str, float]:
    """Seconds dbt spent per kind of node (models, data tests, unit tests), summed over threads."""
    path = target_path / "run_results.json"
    if not path.exists():
        return {}
    out: dict[str, float] = {}
    for r in json.loads(path.read_text())["results"]:
        kind = r["unique_id"].split(".", 1)[0]
        out[kind] = round(out.get(kind, 0.0) + r["execution_time"], 1)
    return out


def summary_line(out: str) -> str:
    lines = [line for line in out.splitlines() if "Done. PASS=" in line or "Completed with" in line]
    return lines[-1].split("Done. ", 1)[-1].strip() if lines else out.strip().splitlines()[-1][-200:]


def sizes() -> dict[str, Any]:
    with common.connect() as conn:
        total = conn.execute("select pg_database_size(current_database())").fetchone()[0]
        rows = conn.execute(
            """select n.nspname, sum(pg_total_relation_size(c.oid))::bigint
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where c.relkind in ('r', 'm', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
                 and n.nspname not like 'pg_toast%%'
               group by 1 order by 2 desc"""
        ).fetchall()
    return {"database_mb": round(total / 2**20), "schemas_mb": {s: round(b / 2**20) for s, b in rows}}


def counts() -> dict[str, int]:
    with common.connect() as conn:
        out = {}
        for table in ("marts.fct_deals", "marts.fct_stage_transitions", "raw_amocrm.events",
                      "raw_bitrix24.stage_history", "raw_onec.deal_stage_stats"):  # fmt: skip
            try:
                out[table] = conn.execute(f"select count(*) from {table}").fetchone()[0]
            except Exception:
                out[table] = -1
        return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--change-share", type=float, default=0.01)
    args = parser.parse_args(argv)
    for name, value in PLACEHOLDER_SECRETS.items():
        os.environ.setdefault(name, value)

    common.banner(f"scale: {args.deals:,} deals")
    common.use_private_warehouse()
    facts = common.machine_facts()
    target_path = common.results_dir().parent / f"dbt-target-{args.deals}"
    config_dir = common.results_dir().parent / "config"  # the file source's exports go beside it
    steps: dict[str, dict[str, Any]] = {}

    def step(name: str, seconds: float, memory: common.PeakMemory, **extra: Any) -> None:
        steps[name] = {"seconds": round(seconds, 1), **memory.as_dict(), "load": common.load_note(), **extra}
        print(f"{name}: {seconds:.1f} s, peak {memory.as_dict()} {extra if extra else ''}", flush=True)

    with common.PeakMemory() as memory, common.Stopwatch() as sw:
        world = generate(args.seed, args.deals)
    step("generate world", sw.seconds, memory)

    from dwh.config import load_config
    from dwh.config.tables import write_config_tables
    from sandbox.world.demo_config import write_demo_config

    with common.PeakMemory() as memory, common.Stopwatch() as sw, common.connect(autocommit=False) as conn:
        for (schema,) in conn.execute(
            "select nspname from pg_namespace where nspname like 'bench_peer_%'"
        ).fetchall():
            conn.execute(
                f"drop schema {schema} cascade"
            )  # the extraction benchmarks' peers: not the product's
        write_demo_config(world, urls_for(world, config_dir), config_dir)
        write_config_tables(conn, load_config(config_dir))
        conn.execute("drop table if exists marts.dq_lost_deal_issues")
        conn.commit()
        rows = land_world(conn, world, config_dir, progress=lambda s: print(s, flush=True))
    step("land raw (bulk COPY)", sw.seconds, memory, rows=rows)
    print(f"counts: {counts()}", flush=True)

    result, memory, seconds = dbt(["build", "--full-refresh"], target_path)
    step("dbt build --full-refresh", seconds, memory, ok=result.returncode == 0, summary=summary_line(result.stdout),
         slowest=slowest_nodes(target_path), by_kind=time_by_kind(target_path),
         models=model_seconds(target_path))  # fmt: skip
    if result.returncode != 0:
        print(result.stdout[-6000:])
    full_sizes = sizes()
    print(f"sizes after the full build: {full_sizes}", flush=True)

    with common.PeakMemory() as memory, common.Stopwatch() as sw:
        change = advance_by_share(world, args.change_share, seed=args.seed)
    step("advance world", sw.seconds, memory, days=round(change.days, 2), deals_changed=change.changed,
         share=round(change.changed / len(world.deals), 4))  # fmt: skip

    with common.PeakMemory() as memory, common.Stopwatch() as sw, common.connect(autocommit=False) as conn:
        staged = reland_world(conn, world, config_dir, progress=lambda s: print(s, flush=True))
    step("land the change (upsert)", sw.seconds, memory, rows_staged=staged)

    result, memory, seconds = dbt(["build"], target_path)
    step("dbt build (incremental)", seconds, memory, ok=result.returncode == 0, summary=summary_line(result.stdout),
         slowest=slowest_nodes(target_path), by_kind=time_by_kind(target_path),
         models=model_seconds(target_path))  # fmt: skip
    if result.returncode != 0:
        print(result.stdout[-6000:])

    final = {"benchmark": "scale", "deals": args.deals, "seed": args.seed, "machine": facts, "steps": steps,
             "sizes_after_full": full_sizes, "sizes_after_incremental": sizes(), "counts": counts()}  # fmt: skip
    print()
    print(common.table(
        ["step", "seconds", "peak client MB", "peak warehouse MB"],
        [[k, v["seconds"], v["peak_client_mb"], v["peak_warehouse_mb"]] for k, v in steps.items()],
    ))  # fmt: skip
    print(f"warehouse: {final['sizes_after_incremental']['database_mb']:,} MB")
    full, incremental = (
        steps["dbt build --full-refresh"]["seconds"],
        steps["dbt build (incremental)"]["seconds"],
    )
    print(f"incremental build: {incremental / full:.0%} of the full build")
    common.save(f"scale_{args.deals}", final)
    return final


if __name__ == "__main__":
    main()
