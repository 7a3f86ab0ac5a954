"""`make demo`: the whole product on the sandbox, from a fresh clone.

1. starts the embedded warehouse;
2. starts the sandbox: a seeded sales world served by local stand-ins of amoCRM, Bitrix24,
   1C, Megaplan, Creatio and RosBiznesSoft and by a folder of deal exports (plus an SMTP
   server and a Telegram Bot API stand-in for the alerts), which writes the demo
   configuration pointing at them;
3. materializes every asset with ``dagster asset materialize --select '*'`` — the same command
   a data engineer runs;
4. prints what landed, what the marts say, and where everything is.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwh import server  # noqa: E402
from dwh.bootstrap import bootstrap  # noqa: E402
from dwh.paths import data_dir  # noqa: E402
from dwh.warehouse import bi_credentials, connect, target  # noqa: E402
from sandbox.world.generate import WORLD_NOW  # noqa: E402

BIN = Path(sys.executable).parent
SEED = int(os.environ.get("DEMO_SEED", "42"))
DEALS = int(os.environ.get("DEMO_DEALS", "3000"))
BASE_PORT = int(os.environ.get("DEMO_BASE_PORT", "18081"))


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def start_sandbox(folder: Path) -> tuple[subprocess.Popen, dict]:
    config = folder / "config"
    ready = config / "sandbox.ready"
    ready.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / "sandbox.log", "w")  # noqa: SIM115 - lives as long as the sandbox
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--seed", str(SEED), "--deals", str(DEALS),
         "--config-dir", str(config), "--truth-dir", str(folder / "truth"), "--base-port", str(BASE_PORT)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"the sandbox did not start; its log: {folder / 'sandbox.log'}\n"
                     + (folder / "sandbox.log").read_text(errors="replace")[-3000:])  # fmt: skip
        time.sleep(0.2)
    return process, json.loads(ready.read_text(encoding="utf-8"))


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env


def materialize_everything(env: dict[str, str]) -> None:
    step("materializing every asset: dagster asset materialize -m dagster_project.definitions --select '*'")
    log = data_dir() / "demo-materialize.log"
    started = time.monotonic()
    with open(log, "w") as out:
        result = subprocess.run(
            [str(BIN / "dagster"), "asset", "materialize", "-m", "dagster_project.definitions", "--select", "*"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-60:]
        print("\n".join(tail))
        sys.exit(f"materialization failed: the full log is {log}")
    print(f"    done in {time.monotonic() - started:.0f} s (log: {log})")


def table(rows: list[tuple], headers: list[str]) -> None:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) if text else len(h) for i, h in enumerate(headers)]
    print("    " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in text:
        print("    " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def exists(conn, qualified: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (qualified,)).fetchone()[0]


def print_results() -> None:
    with connect() as conn:
        step("extraction: records and requests per connection (ops.extract_runs, this run)")
        table(conn.execute("""
            select distinct on (connection_name) connection_name, status, records, requests, retries,
                   round(extract(epoch from finished_at - started_at)::numeric, 1) as seconds
            from ops.extract_runs order by connection_name, run_id desc""").fetchall(),
              ["connection", "status", "records", "requests", "retries", "seconds"])  # fmt: skip
        if exists(conn, "marts.fct_deals"):
            step("deals per connection in the marts (open, won, lost)")
            table(conn.execute("""
                select source_name, source_system, count(*) filter (where status = 'open'),
                       count(*) filter (where status = 'won'), count(*) filter (where status = 'lost')
                from marts.fct_deals group by 1, 2 order by 1""").fetchall(),
                  ["connection", "system", "open", "won", "lost"])  # fmt: skip
        if exists(conn, "marts.fct_lost_deals"):
            step("loss by canonical stage (all months): deals and money")
            table(conn.execute("""
                select lost_at_canonical_stage, count(*), round(sum(amount_base)) from marts.fct_lost_deals
                group by 1 order by 2 desc""").fetchall(), ["stage", "lost deals", "lost, RUB"])  # fmt: skip
            step("loss by manager")
            table(conn.execute("""
                select manager_name, count(*), round(sum(amount_base)) from marts.fct_lost_deals
                group by 1 order by 2 desc""").fetchall(), ["manager", "lost deals", "lost, RUB"])  # fmt: skip
            step("loss by reason")
            table(conn.execute("""
                select coalesce(loss_reason_name, '(no reason given)'), count(*), round(sum(amount_base))
                from marts.fct_lost_deals
                group by 1 order by 2 desc""").fetchall(), ["reason", "lost deals", "lost, RUB"])  # fmt: skip
        if exists(conn, "marts.rpt_funnel_conversion"):
            step("funnel conversion against targets, per manager (all weeks summed)")
            table(conn.execute("""
                select c.manager_name, c.canonical_stage, sum(c.reached_stage), sum(c.reached_next_stage),
                       round(100.0 * sum(c.reached_next_stage) / nullif(sum(c.reached_stage), 0), 1),
                       round(100 * max(c.target_rate), 0)
                from marts.rpt_funnel_conversion as c
                group by 1, 2 order by 1, min(c.stage_position)""").fetchall(),
                  ["manager", "stage", "reached", "reached next", "rate %", "target %"])  # fmt: skip
        if exists(conn, "ops.digests"):
            step("the digest to the head of sales (ops.digests)")
            table(conn.execute("""select channel, status, items, created_at::timestamp(0) from ops.digests
                                  order by digest_id desc limit 5""").fetchall(),
                  ["channel", "status", "issues", "at"])  # fmt: skip


def print_where(sandbox: dict) -> None:
    embedded = server.embedded_server()
    bi_user, _ = bi_credentials()
    outbox = data_dir() / "outbox"
    exports = Path(os.environ.get("DWH_EXPORT_DIR") or data_dir() / "exports")
    step("where things are")
    print(
        f"    warehouse:    psql -h {embedded.socket_dir} -p {embedded.port} -U {server.ADMIN_USER} {server.DATABASE}"
    )
    print(
        f"    Metabase/Excel: PostgreSQL at 127.0.0.1:{embedded.port}, database {server.DATABASE}, user {bi_user},"
    )
    print(
        f"                  password in {embedded.root / 'bi-password'}  (see docs/metabase.md, docs/excel.md)"
    )
    print(f"    outbox:       {outbox}  (the digest and reports as .eml, the Telegram transcript)")
    for path in sorted(outbox.glob("*"))[-6:] if outbox.exists() else []:
        print(f"                  {path.name}")
    for path in sorted(exports.glob("*.xlsx"))[-1:] if exports.exists() else []:
        print(f"    Excel report: {path}")
    print(f"    sandbox truth: {sandbox['truth_dir']}")
    print("    Dagster UI:   make dev, then open http://127.0.0.1:3000")
    print("    stop the warehouse: make warehouse-stop")


def main() -> None:
    step("starting the embedded warehouse")
    tgt = target()
    bootstrap(tgt)
    print(f"    {tgt.describe()}")
    step(f"starting the sandbox CRMs (seed {SEED}, {DEALS} deals)")
    process, sandbox = start_sandbox(data_dir() / "sandbox")
    try:
        for name, url in sandbox["urls"].items():  # a file connection: the folder of its exports
            print(f"    {name:<15} {url}")
        env = {
            **os.environ,
            **read_env_file(Path(sandbox["env_file"])),
            "DWH_CONFIG_DIR": sandbox["config_dir"],
        }
        env.setdefault("DAGSTER_HOME", str(data_dir() / "dagster"))
        Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        # the sandbox's world ends on WORLD_NOW: the reports are as of the day after
        env.setdefault("DWH_REPORT_AS_OF", (WORLD_NOW.date() + timedelta(days=1)).isoformat())
        materialize_everything(env)
        print_results()
        print_where(sandbox)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
