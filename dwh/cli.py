"""``dwh``: run the warehouse's pieces by hand.

dwh warehouse start|stop|status|url   the embedded PostgreSQL
dwh warehouse env                     start it if needed; print the variables dbt's profile reads
dwh config check                      validate DWH_CONFIG_DIR (default config/)
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from dwh import server
from dwh.bootstrap import bootstrap
from dwh.config import ConfigError, load_config
from dwh.paths import config_dir
from dwh.warehouse import bi_credentials, dbt_env, target


def _warehouse(action: str) -> int:
    embedded = server.embedded_server()
    if action == "start":
        tgt = target()
        bootstrap(tgt)
        print(f"warehouse running: {tgt.describe()}")
        if tgt.embedded:
            print(f"  data:   {embedded.pgdata}")
            print(
                f"  psql:   psql -h {embedded.socket_dir} -p {embedded.port} -U {server.ADMIN_USER} {server.DATABASE}"
            )
            bi_user, _ = bi_credentials()
            source = (
                "$DWH_BI_PASSWORD" if os.environ.get("DWH_BI_PASSWORD") else embedded.root / "bi-password"
            )
            print(f"  BI:     {embedded.tcp_url(bi_user)}  (password in {source})")
        return 0
    if action == "stop":
        print("warehouse stopped" if server.stop(embedded) else "warehouse was not running")
        return 0
    if action == "status":
        running = server.is_running(embedded)
        print(
            f"embedded warehouse {'running' if running else 'stopped'} ({embedded.pgdata}, port {embedded.port})"
        )
        return 0 if running else 3
    if action == "env":
        tgt = target()
        bootstrap(tgt)
        for name, value in dbt_env(tgt).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if action == "url":
        print(target(start_embedded=False).describe())
        return 0
    raise AssertionError(action)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dwh", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    wh = sub.add_parser("warehouse", help="the embedded PostgreSQL")
    wh.add_argument("action", choices=["start", "stop", "status", "url", "env"])
    cfg = sub.add_parser("config", help="the configuration files")
    cfg.add_argument("action", choices=["check"])
    args = parser.parse_args(argv)
    try:
        if args.command == "warehouse":
            return _warehouse(args.action)
        load_config()
        print(f"configuration in {config_dir()} is valid")
        return 0
    except (ConfigError, server.WarehouseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
