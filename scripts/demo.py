"""`make demo`: the whole product on the sandbox, from a fresh clone.

Starts the embedded warehouse, materializes every asset with ``dagster asset materialize``
(the same command a data engineer runs), and prints where the results are.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dwh import server  # noqa: E402
from dwh.bootstrap import bootstrap  # noqa: E402
from dwh.paths import data_dir  # noqa: E402
from dwh.warehouse import bi_credentials, connect, target  # noqa: E402

BIN = Path(sys.executable).parent


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def materialize_everything(env: dict[str, str]) -> None:
    step("materializing every asset (dagster asset materialize --select '*')")
    log = data_dir() / "demo-materialize.log"
    with open(log, "w") as out:
        result = subprocess.run(
            [str(BIN / "dagster"), "asset", "materialize", "-m", "dagster_project.definitions", "--select", "*"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print("\n".join(tail))
        sys.exit(f"materialization failed: the full log is {log}")
    print(f"    done (log: {log})")


def print_results() -> None:
    with connect() as conn:
        tables = conn.execute(
            """select table_schema, count(*) from information_schema.tables
               where table_schema in ('config', 'staging', 'intermediate', 'marts') group by 1 order by 1"""
        ).fetchall()
    step("the warehouse")
    for schema, count in tables:
        print(f"    {schema:<13} {count} tables/views")


def print_where() -> None:
    embedded = server.embedded_server()
    bi_user, _ = bi_credentials()
    step("where things are")
    print(f"    warehouse:   psql -h {embedded.socket_dir} -p {embedded.port} -U {server.ADMIN_USER} {server.DATABASE}")
    print(f"    BI tools:    host 127.0.0.1, port {embedded.port}, database {server.DATABASE}, user {bi_user},")
    print(f"                 password in {embedded.root / 'bi-password'} (Metabase: PostgreSQL; Excel: psqlODBC)")
    print("    Dagster UI:  make dev, then open http://127.0.0.1:3000")
    print("    stop the warehouse: make warehouse-stop")


def main() -> None:
    step("starting the embedded warehouse")
    tgt = target()
    bootstrap(tgt)
    print(f"    {tgt.describe()}")
    env = dict(os.environ)
    env.setdefault("DAGSTER_HOME", str(data_dir() / "dagster"))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    materialize_everything(env)
    print_results()
    print_where()


if __name__ == "__main__":
    main()
