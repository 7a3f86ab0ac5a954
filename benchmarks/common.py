"""What every benchmark shares: a time-compressed clock, a private warehouse, machine facts,
peak-memory sampling, and the results file each run appends to.

Benchmarks print figures; they never assert times.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = "/tmp/bench-dwh"


# -- time --------------------------------------------------------------------------------------
class HybridClock:
    """Real time, except that waiting is free.

    ``now()`` is ``time.monotonic()`` plus every second anyone ``sleep``-ed on this clock;
    ``sleep`` returns at once. A limiter and a stand-in that share it see the real limits
    (7 requests per second, 2 per second after a burst of 50) while a run that would wait ten
    minutes for the limit takes only its real work: the client's, the stand-in's and the
    warehouse's processing time all count, only the waits are skipped. So ``now()`` at the end
    minus ``now()`` at the start is the wall time the run would take against the real API
    (less the network's latency: everything here is on loopback)."""

    def __init__(self) -> None:
        self._skipped = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() + self._skipped

    __call__ = now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._skipped += seconds

    @property
    def skipped(self) -> float:
        return self._skipped


# -- the private warehouse -----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def use_private_warehouse() -> None:
    """Point the product at the benchmarks' own warehouse (``DWH_DATA_DIR``, default
    /tmp/bench-dwh) on a free port, never the tests' or the demo's; start and bootstrap it."""
    os.environ.setdefault("DWH_DATA_DIR", DEFAULT_DATA_DIR)
    os.environ.pop("DWH_DATABASE_URL", None)
    data = Path(os.environ["DWH_DATA_DIR"])
    pid_file = data / "postgres" / "pgdata" / "postmaster.pid"
    if "DWH_PG_PORT" not in os.environ:
        port = None
        if pid_file.exists():  # already running from an earlier benchmark: keep its port
            lines = pid_file.read_text().splitlines()
            if len(lines) > 3 and lines[3].strip().isdigit():
                port = int(lines[3])
        os.environ["DWH_PG_PORT"] = str(port or _free_port())
    from dwh.bootstrap import bootstrap
    from dwh.warehouse import target

    bootstrap(target())


def admin_conninfo() -> str:
    from dwh.warehouse import target

    return target().conninfo()


def connect(autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(admin_conninfo(), autocommit=autocommit)


# -- the machine ---------------------------------------------------------------------------------
def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(Exception), connect() as conn:
        facts["postgresql"] = conn.execute("show server_version").fetchone()[0]
    return facts


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


# -- memory --------------------------------------------------------------------------------------
def _tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _postgres_pss() -> int:
    """The warehouse server's memory: the proportional set size of all its processes (shared
    buffers counted once, spread over the processes that touched them)."""
    from dwh import server

    pid_file = server.embedded_server().pgdata / "postmaster.pid"
    try:
        postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
        procs = [postmaster, *postmaster.children(recursive=True)]
    except (OSError, ValueError, IndexError, psutil.Error):
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_full_info().pss
    return total


@dataclass
class PeakMemory:
    """Samples, every ``interval`` seconds while active, the RSS of a process tree (this
    process, or a child's ``pid`` once set) and the PSS of the warehouse server."""

    pid: int = field(default_factory=os.getpid)
    interval: float = 0.25
    peak_client: int = 0
    peak_server: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        self.peak_client = max(self.peak_client, _tree_rss(self.pid))
        self.peak_server = max(self.peak_server, _postgres_pss())

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()

    def as_dict(self) -> dict[str, float]:
        return {
            "peak_client_mb": round(self.peak_client / 2**20),
            "peak_warehouse_mb": round(self.peak_server / 2**20),
        }


# -- results -------------------------------------------------------------------------------------
def results_dir() -> Path:
    folder = Path(os.environ.get("DWH_DATA_DIR", DEFAULT_DATA_DIR)) / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write the run's figures as JSON (``<data dir>/results/<name>.json``) and say where."""
    path = results_dir() / f"{name}.json"
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    print(f"\nfigures written to {path}")
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (what docs/benchmarks.md takes as is)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, rule, *body])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "n/a"


def banner(title: str) -> None:
    print(f"\n== {title} ==", flush=True)
    print(f"   {load_note()}; python {sys.version.split()[0]}", flush=True)


class Stopwatch:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.started = self.clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self.clock() - self.started


def iterate_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
