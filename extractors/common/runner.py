"""Running one connection's extraction: the lock, the report, the failure that stays in its lane.

Each source package exposes ``ENTITIES`` (the raw tables it lands) and
``extract(source, conn, mode, report)``. ``run_connection`` wraps it: it takes the
connection's advisory lock, catches what a user can fix (a dead credential, an API that keeps
failing) into ``report.error`` with a message naming the connection, and records the run in
``ops.extract_runs``. One connection failing never stops the others.
"""

from __future__ import annotations

import importlib
import logging
import time
from types import ModuleType
from typing import Any

import psycopg

from extractors.common.errors import ExtractError
from extractors.common.landing import RawLanding
from extractors.common.run import Mode, RunReport
from extractors.common.state import connection_lock

log = logging.getLogger(__name__)

SYSTEM_PACKAGES = {
    "amocrm": "extractors.amocrm",
    "bitrix24": "extractors.bitrix24",
    "onec": "extractors.onec",
    "creatio": "extractors.creatio",
    "megaplan": "extractors.megaplan",
    "rosbiznessoft": "extractors.rosbiznessoft",
    "file": "extractors.file",
}


def source_module(system: str) -> ModuleType:
    if system not in SYSTEM_PACKAGES:
        raise KeyError(f"no extractor for connections of type {system!r}")
    return importlib.import_module(SYSTEM_PACKAGES[system])


def ensure_raw_tables(conn: psycopg.Connection) -> None:
    """Every raw table of every system, empty until a connection lands records: the staging
    models read them whether or not the company uses that system. Concurrent callers must
    serialise (the Dagster resource holds the warehouse's set-up lock)."""
    for system in SYSTEM_PACKAGES:
        landing = RawLanding(conn, system, connection_name="")
        for entity in source_module(system).ENTITIES:
            landing.ensure(entity)


def run_connection(source: Any, conn: psycopg.Connection, mode: Mode) -> RunReport:
    """Extract one connection. ``conn`` is in autocommit mode: the extractor opens one
    transaction per page (``with conn.transaction():``) holding the records and the cursor
    that covers them, and the advisory lock lives for the session."""
    if not conn.autocommit:
        raise ValueError(
            "run_connection needs an autocommit connection: each page commits its own transaction"
        )
    report = RunReport(connection=source.name, system=source.type, mode=mode)
    module = source_module(source.type)
    try:
        with connection_lock(conn, source.name):
            module.extract(source, conn, mode, report)
    except ExtractError as exc:
        report.error = str(exc)
        log.error("%s", exc)
    finally:
        report.finished = report.finished or time.monotonic()
    report.record(conn)
    return report
