"""One extraction run of one connection: what it did, for Dagster metadata and ops.extract_runs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from extractors.common.http import RequestStats

Mode = Literal["incremental", "full"]


@dataclass
class RunReport:
    connection: str
    system: str
    mode: Mode
    started: float = field(default_factory=time.monotonic)
    stats: RequestStats = field(default_factory=RequestStats)
    records: dict[str, int] = field(default_factory=dict)  # entity -> rows written
    deleted: dict[str, int] = field(default_factory=dict)  # entity -> rows marked deleted
    rejects: dict[str, int] = field(default_factory=dict)  # entity -> records rejected
    cursors: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    finished: float | None = None

    def add(self, bucket: dict[str, int], entity: str, n: int) -> None:
        bucket[entity] = bucket.get(entity, 0) + n

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        return "warning" if any(self.rejects.values()) else "ok"

    def as_metadata(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "mode": self.mode,
            "status": self.status,
            **self.stats.as_metadata(),
            "records": dict(sorted(self.records.items())),
            "deleted": dict(sorted(self.deleted.items())),
            "rejects": dict(sorted(self.rejects.items())),
            "duration_seconds": round(self.duration, 2),
            "cursors": self.cursors,
            **({"error": self.error} if self.error else {}),
        }

    def record(self, conn: psycopg.Connection) -> None:
        """Append this run to ops.extract_runs (in its own transaction)."""
        with conn.transaction():
            conn.execute(
                """insert into ops.extract_runs (connection_name, mode, started_at, finished_at, status, requests,
                       retries, records, rejects, message)
                   values (%s, %s, now() - make_interval(secs => %s), now(), %s, %s, %s, %s, %s, %s)""",
                (self.connection, self.mode, self.duration, self.status, self.stats.requests, self.stats.retries,
                 sum(self.records.values()), sum(self.rejects.values()), self.error),
            )  # fmt: skip
