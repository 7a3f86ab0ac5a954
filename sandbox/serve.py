"""Run the sandbox: generate the world, start one stand-in per source on 127.0.0.1 (a file
source is "served" by writing its exports into a folder), write the demo configuration and
the ground truth, and serve until SIGINT/SIGTERM.

While it serves, ``<config dir>/sandbox.pid`` holds the process id and
``<config dir>/sandbox.ready`` (JSON: urls, files) exists; both are removed on exit. A
Makefile waits for ``sandbox.ready`` before running the pipeline.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sandbox.files.render import write_exports
from sandbox.mailbox import Mailbox
from sandbox.standin import Faults, StandIn
from sandbox.telegram import TelegramStandIn
from sandbox.world.advance import ChangeSet, advance
from sandbox.world.demo_config import DEFAULT_SMTP_PORT, ONEC_PUBLICATION, RBS_INSTALLATION, write_demo_config
from sandbox.world.generate import generate
from sandbox.world.model import World
from sandbox.world.truth import write_truth

# system -> (module, class) of its stand-in, imported only when a sandbox starts
STANDINS = {
    "amocrm": ("sandbox.amocrm", "AmoCRMStandIn"),
    "bitrix24": ("sandbox.bitrix24", "Bitrix24StandIn"),
    "onec": ("sandbox.onec", "OneCStandIn"),
    "megaplan": ("sandbox.megaplan", "MegaplanStandIn"),
    "creatio": ("sandbox.creatio", "CreatioStandIn"),
    "rosbiznessoft": ("sandbox.rosbiznessoft", "RosBiznesSoftStandIn"),
}
# systems served as files written into a folder, not over HTTP
FILE_SYSTEMS = ("file",)
# stand-in keyword arguments of the demo's installations
STANDIN_OPTIONS: dict[str, dict[str, Any]] = {"rosbiznessoft": {"installation": RBS_INSTALLATION}}
EXPORTS_FOLDER = "exports"  # beside the config directory: <data dir>/exports/<source name>
PID_FILE = "sandbox.pid"
READY_FILE = "sandbox.ready"


def standin_class(system: str) -> type[StandIn]:
    try:
        module_name, class_name = STANDINS[system]
    except KeyError:
        raise ValueError(f"no stand-in for system {system!r} (known: {', '.join(STANDINS)})") from None
    module = importlib.import_module(module_name)
    return getattr(module, class_name)  # type: ignore[no-any-return]


def parse_faults(spec: str | None, seed: int, source_names: list[str]) -> dict[str, Faults]:
    """``"error_rate=0.05,burst_every=40"`` applies to every source;
    ``"amo_retail:error_rate=0.1;erp:slow_rate=0.2"`` to the named ones (groups split by ``;``)."""
    faults = {name: Faults(seed=seed) for name in source_names}
    for group in filter(None, (g.strip() for g in (spec or "").split(";"))):
        head, sep, rest = group.partition(":")
        if sep and "=" not in head:
            if head not in faults:
                raise ValueError(f"--faults: unknown source {head!r} (sources: {', '.join(source_names)})")
            targets, body = [head], rest
        else:
            targets, body = source_names, group
        for name in targets:
            parsed = Faults.from_spec(body, seed=seed)
            current = faults[name]
            for key, value in vars(parsed).items():
                if key != "seed" and value != getattr(Faults(), key):
                    setattr(current, key, value)
    return faults


@dataclass
class Sandbox:
    """A world served by its stand-ins, and by export files for its file sources."""

    world: World
    standins: dict[str, StandIn] = field(default_factory=dict)
    exports: dict[str, Path] = field(default_factory=dict)  # file source name -> its folder
    owned_folder: Path | None = None  # a temporary exports folder, removed on stop

    @property
    def urls(self) -> dict[str, str]:
        """source name -> the URL sources.yaml points at (1C: its OData publication; a file
        source: the folder of its exports)."""
        out = {}
        for name, standin in self.standins.items():
            system = self.world.source(name).system
            out[name] = standin.url + ONEC_PUBLICATION if system == "onec" else standin.url
        for name, folder in self.exports.items():
            out[name] = str(folder)
        return out

    def write_exports(self) -> list[Path]:
        """Each file source exports its deals and stage history as of the world's clock (a
        later clock, a new pair of files beside the earlier ones)."""
        written = []
        for name, folder in self.exports.items():
            written += write_exports(self.world, name, folder).values()
        return written

    def advance(self, days: float, seed: int) -> ChangeSet:
        """Time moves on for every source: the world changes under the stand-ins' locks, and
        the file sources export again."""
        with ExitStack() as locks:
            for standin in self.standins.values():
                locks.enter_context(standin.lock)
            changes = advance(self.world, days, seed)
        self.write_exports()
        return changes

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for standin in self.standins.values():
            env.update(standin.credentials())  # type: ignore[attr-defined]
        return env

    def stop(self) -> None:
        for standin in self.standins.values():
            standin.stop()
        if self.owned_folder is not None:
            shutil.rmtree(self.owned_folder, ignore_errors=True)
            self.owned_folder = None


def start_sandbox(
    world: World,
    faults: dict[str, Faults] | None = None,
    base_port: int | None = None,
    clock: Callable[[], float] | None = None,
    exports_dir: str | Path | None = None,
) -> Sandbox:
    """Start one stand-in per source of ``world`` (ports ``base_port``, ``base_port+1``, ...
    in the order of ``world.sources``, or free ones) and write the file sources' exports
    into ``exports_dir/<source name>`` (a temporary folder, removed on stop, when not given)."""
    sandbox = Sandbox(world)
    try:
        for source in world.sources:
            if source.system in FILE_SYSTEMS:
                if exports_dir is None:
                    exports_dir = sandbox.owned_folder = Path(tempfile.mkdtemp(prefix="sandbox-exports-"))
                folder = sandbox.exports[source.name] = Path(exports_dir).resolve() / source.name
                shutil.rmtree(folder, ignore_errors=True)  # exports of an earlier world are not this one's
        sandbox.write_exports()
        served = [s for s in world.sources if s.system not in FILE_SYSTEMS]
        for i, source in enumerate(served):
            cls = standin_class(source.system)
            kwargs: dict[str, Any] = {"faults": (faults or {}).get(source.name, Faults(seed=world.seed))}
            kwargs.update(STANDIN_OPTIONS.get(source.system, {}))
            if clock is not None:
                kwargs["clock"] = clock
            standin = cls(world, source.name, **kwargs)  # type: ignore[call-arg]
            port = 0 if base_port is None else base_port + i
            try:
                standin.start(port=port)
            except OSError as exc:
                raise OSError(
                    f"cannot serve {source.name} on 127.0.0.1:{port}: {exc.strerror or exc}"
                ) from exc
            sandbox.standins[source.name] = standin
    except BaseException:
        sandbox.stop()
        raise
    return sandbox


def serve(
    seed: int,
    deals: int,
    config_dir: str | Path,
    *,
    faults: str | None = None,
    truth_dir: str | Path | None = None,
    base_port: int | None = None,
    env_file: str | Path | None = None,
    smtp_port: int | None = None,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
) -> int:
    """The ``serve`` command. Returns when ``stop`` is set or on SIGINT/SIGTERM."""
    config = Path(config_dir)
    config.mkdir(parents=True, exist_ok=True)
    truth = Path(truth_dir) if truth_dir is not None else config.resolve().parent / "truth"
    pid_path, ready_path = config / PID_FILE, config / READY_FILE
    ready_path.unlink(missing_ok=True)
    pid_path.write_text(f"{os.getpid()}\n", encoding="utf-8")
    stop = stop or threading.Event()
    previous_handlers = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous_handlers[signum] = signal.signal(signum, lambda *_: stop.set())
    sandbox: Sandbox | None = None
    alert_services: list[Any] = []
    try:
        started = time.perf_counter()
        world = generate(seed, deals)
        took = time.perf_counter() - started
        sandbox = start_sandbox(
            world,
            parse_faults(faults, seed, [s.name for s in world.sources]),
            base_port,
            exports_dir=config.resolve().parent / EXPORTS_FOLDER,
        )
        amo = next((s for s in sandbox.standins.values() if hasattr(s, "redirect_uri")), None)
        extra: dict[str, Any] = {"redirect_uri": amo.redirect_uri} if amo is not None else {}  # type: ignore[attr-defined]
        # where the alerts go: a mail server keeping .eml files, and a Telegram Bot API stand-in
        mailbox = Mailbox(
            config.resolve().parent / "mailbox",
            smtp_port if smtp_port is not None else (DEFAULT_SMTP_PORT if base_port else 0),
        )
        extra["smtp_port"] = mailbox.start()
        telegram = TelegramStandIn(transcript_file=config.resolve().parent / "telegram-transcript.txt")
        telegram.start(port=extra["smtp_port"] + 1 if base_port else 0)
        extra["telegram_api_url"] = telegram.url
        alert_services = [mailbox, telegram]
        env_path = Path(env_file) if env_file is not None else config / "sandbox.env"
        files = write_demo_config(world, sandbox.urls, config, {**sandbox.env, **telegram.credentials()},
                                  env_path=env_path, **extra)  # fmt: skip
        write_truth(world, truth)
        _report(out, world, sandbox, took, files, truth)
        ready = {
            "pid": os.getpid(),
            "seed": seed,
            "deals": deals,
            "urls": sandbox.urls,
            "config_dir": str(config.resolve()),
            "env_file": str(env_path.resolve()),
            "truth_dir": str(truth.resolve()),
        }
        tmp = ready_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        tmp.replace(ready_path)  # appears whole
        print(f"ready: {ready_path} — serving until SIGINT/SIGTERM", file=out, flush=True)
        while not stop.wait(0.5):
            pass
        print("sandbox: stopping", file=out, flush=True)
        (config.resolve().parent / "telegram-transcript.txt").write_text(
            telegram.transcript(), encoding="utf-8"
        )
        return 0
    finally:
        if sandbox is not None:
            sandbox.stop()
        for service in alert_services:
            service.stop()
        ready_path.unlink(missing_ok=True)
        pid_path.unlink(missing_ok=True)
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def _report(out: TextIO, world: World, sandbox: Sandbox, took: float, files: list[Path], truth: Path) -> None:
    print(f"sandbox: seed {world.seed}, {len(world.deals)} deals, generated in {took:.1f} s", file=out)
    for name, url in sandbox.urls.items():
        print(f"  {name:<15} {world.source(name).system:<13} {url}", file=out)
    print("config: " + ", ".join(str(p) for p in files), file=out)
    print(f"truth: {truth}", file=out, flush=True)
