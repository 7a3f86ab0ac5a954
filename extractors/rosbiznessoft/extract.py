"""What is read from a RosBiznesSoft installation and how it is landed in ``raw_rosbiznessoft``.

A run logs in once, then reads every structure in rounds: one request carries the next page
(``limit`` first/number, ordered by id) of every structure still being read, and one
transaction lands that round's records with the cursors that cover them.

- Lookups (deal types, stages, loss reasons, users) are small: read whole every run, and a
  record gone from them is marked deleted at once.
- Deals, companies, legal entities, stage history and comments are read incrementally: the
  records whose modification (or creation) time is at or after the cursor's high-water mark
  minus ``OVERLAP``. The high-water mark moves only when a structure was read to its end, so
  a run that dies midway reads the same records again next time, never fewer.
- Mode ``full`` reads everything; a landed record missing from a full read is looked for
  once more (its ids only) before it is marked deleted. A record moved to the bin
  (``visible`` 0) is landed as served and marked deleted; one restored from it comes back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from dwh.config.models import RBS_REQUIRED_OBJECTS, RosBiznesSoftSource
from extractors.common.errors import ExtractError
from extractors.common.landing import RawLanding, RawRecord
from extractors.common.run import Mode, RunReport
from extractors.common.state import get_cursor, set_cursor
from extractors.rosbiznessoft.client import ActionResult, ListAction, RosBiznesSoftClient
from extractors.rosbiznessoft.structures import (
    STAGES,
    STRUCTURES,
    Names,
    Structure,
    parse_date,
    record_problem,
    values_of,
)

SYSTEM = "rosbiznessoft"
# late writes and the server's clock: records modified a little before the high-water mark
OVERLAP = timedelta(minutes=10)
KEY_PAGE = 1000  # ids per page when looking for records a full read missed
HIGH_WATER_FORMAT = "%Y-%m-%d %H:%M:%S"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Scan:
    """One structure being read in this run."""

    structure: Structure
    name: str  # the installation's structure name
    fields: dict[str, str]  # field meaning -> the installation's name
    complete: bool  # every record is read: what is missing was deleted
    cursor: dict[str, Any]
    filters: list[tuple[str, str, str]] = field(default_factory=list)
    first: int = 0
    done: bool = False
    seen: set[str] = field(default_factory=set)
    high_water: datetime | None = None

    @property
    def entity(self) -> str:
        return self.structure.entity

    @property
    def id_field(self) -> str:
        return self.fields["id"]


class RosBiznesSoftExtraction:
    """One run over one installation."""

    def __init__(
        self,
        source: RosBiznesSoftSource,
        conn: psycopg.Connection,
        mode: Mode,
        report: RunReport,
        client: RosBiznesSoftClient,
    ):
        self.source, self.conn, self.mode, self.report, self.client = source, conn, mode, report, client
        self.landing = RawLanding(conn, SYSTEM, source.name)
        self.names = Names(source)
        self.zone = ZoneInfo(source.timezone)
        self.page_size = source.page_size

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> None:
        for meaning in RBS_REQUIRED_OBJECTS:
            if not self.source.object_name(meaning):
                raise ExtractError(
                    self.source.name, f"objects.{meaning} may not be empty: the extractor needs it"
                )
        scans = [self.plan(s) for s in STRUCTURES if self.names.structure(s)]
        for s in scans:
            self.landing.ensure(s.entity)
        self.client.login()
        self.rounds(scans)
        self.deletions([s for s in scans if s.complete])

    def plan(self, structure: Structure) -> Scan:
        cursor = dict(get_cursor(self.conn, self.source.name, structure.entity) or {})
        fields = self.names.fields(structure)
        modified = fields.get(structure.modified or "")
        scan = Scan(structure, self.names.structure(structure), fields, complete=True, cursor=cursor)
        if modified is None:
            cursor["strategy"] = "whole structure (no modification field)"
        elif self.mode == "full" or "high_water" not in cursor:
            cursor["strategy"] = "full read"
        else:
            mark = parse_date(cursor["high_water"], self.zone)
            since = (mark - OVERLAP).strftime(HIGH_WATER_FORMAT) if mark else "0000-00-00 00:00:00"
            scan.filters.append((modified, ">=", since))
            scan.complete = False
            cursor["strategy"] = f"{modified} >= {since}"
        return scan

    def rounds(self, scans: list[Scan]) -> None:
        """A page of every unfinished structure per request, one transaction per round."""
        pending = list(scans)
        while pending:
            actions = [
                ListAction(s.name, list(s.fields.values()), s.filters, s.id_field, s.first, self.page_size)
                for s in pending
            ]
            results = self.client.list_many(actions, "list " + ", ".join(s.name for s in pending))
            for scan, result in zip(pending, results, strict=True):
                if not result.ok:
                    raise self.refused(scan, result)
            with self.conn.transaction():
                for scan, result in zip(pending, results, strict=True):
                    self.land(scan, result.rows)
                    scan.first += len(result.rows)
                    if len(result.rows) < self.page_size:
                        scan.done = True
                        self.finish(scan)
                    self.save_cursor(scan)
            pending = [s for s in pending if not s.done]

    # -- landing ----------------------------------------------------------------------------
    def land(self, scan: Scan, rows: list[dict[str, str]]) -> None:
        live: list[RawRecord] = []
        binned: list[RawRecord] = []
        visible = scan.fields.get("visible")
        modified = scan.fields.get(scan.structure.modified or "")
        for row in rows:
            problem = record_problem(scan.structure, row, scan.fields, self.zone)
            record_id = str(row.get(scan.id_field) or "").strip() or None
            values = values_of(row, scan.fields)
            if problem is None and scan.structure is STAGES:
                result = row.get(scan.fields["stage_result"], "")
                values["stage_status"] = self.source.stage_results.get(result)
                if values["stage_status"] is None:
                    known = ", ".join(f"{k} ({v})" for k, v in self.source.stage_results.items())
                    problem = (
                        f"{scan.fields['stage_result']} (fields.stage_result) {result!r} is none of stage_results "
                        f"[{known}]: add it to stage_results in sources.yaml"
                    )
            if record_id is not None:
                scan.seen.add(record_id)
            if problem is not None:
                self.landing.reject(
                    scan.entity, record_id, f"{scan.name} {record_id or '(no id)'}: {problem}", row
                )
                self.report.add(self.report.rejects, scan.entity, 1)
                continue
            updated_at = parse_date(row.get(modified), self.zone) if modified else None
            if updated_at is not None and (scan.high_water is None or updated_at > scan.high_water):
                scan.high_water = updated_at
            record = RawRecord(
                record_id, {"structure": scan.name, "fields": row, "values": values}, updated_at
            )  # type: ignore[arg-type]
            (binned if visible and row.get(visible) == "0" else live).append(record)
        written = self.landing.upsert(scan.entity, live) + self.landing.upsert(
            scan.entity, binned, deleted=True
        )
        if written:
            self.report.add(self.report.records, scan.entity, written)

    def finish(self, scan: Scan) -> None:
        """The structure was read to its end: the high-water mark may move."""
        if scan.high_water is not None:
            old = parse_date(scan.cursor.get("high_water"), self.zone)
            if old is None or scan.high_water > old:
                scan.cursor["high_water"] = scan.high_water.strftime(HIGH_WATER_FORMAT)
        if scan.complete:
            scan.cursor["records"] = len(scan.seen)
            if self.mode == "full":
                scan.cursor["last_full_read"] = _now()

    def save_cursor(self, scan: Scan) -> None:
        set_cursor(self.conn, self.source.name, scan.entity, scan.cursor)
        self.report.cursors[scan.entity] = dict(scan.cursor)

    # -- deletions ----------------------------------------------------------------------------
    def deletions(self, scans: list[Scan]) -> None:
        """Records landed before and missing from a complete read: looked for once more (ids
        only, a row can slip between two pages while the installation changes), then marked deleted."""
        missing = {s.entity: self.landing.landed_ids(s.entity) - s.seen for s in scans}
        recheck = [s for s in scans if missing[s.entity]]
        present = self.ids_present(recheck) if recheck else {}
        with self.conn.transaction():
            for scan in scans:
                gone = sorted(missing[scan.entity] - present.get(scan.entity, set()))
                n = self.landing.mark_deleted(scan.entity, gone)
                if n:
                    self.report.add(self.report.deleted, scan.entity, n)
                scan.cursor["deleted"] = len(gone)
                self.save_cursor(scan)

    def ids_present(self, scans: list[Scan]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {s.entity: set() for s in scans}
        offsets = {s.entity: 0 for s in scans}
        pending = list(scans)
        while pending:
            actions = [
                ListAction(s.name, [s.id_field], (), s.id_field, offsets[s.entity], KEY_PAGE) for s in pending
            ]
            results = self.client.list_many(actions, "ids of " + ", ".join(s.name for s in pending))
            still = []
            for scan, result in zip(pending, results, strict=True):
                if not result.ok:
                    raise self.refused(scan, result)
                found[scan.entity].update(str(r.get(scan.id_field) or "").strip() for r in result.rows)
                offsets[scan.entity] += len(result.rows)
                if len(result.rows) == KEY_PAGE:
                    still.append(scan)
            pending = still
        return found

    # -- errors -------------------------------------------------------------------------------
    def refused(self, scan: Scan, result: ActionResult) -> ExtractError:
        meaning, error = scan.structure.meaning, result.error
        optional = meaning not in RBS_REQUIRED_OBJECTS
        named = [
            (m, n) for m, n in scan.fields.items() if re.search(rf"(?<![\w.]){re.escape(n)}(?![\w.])", error)
        ]
        if named:
            m, n = named[0]
            return ExtractError(
                self.source.name,
                f"the structure {scan.name!r} has no field {n!r} (fields.{m} in sources.yaml; it said: {error}). "
                f"Look the field up in the Конфигуратор (/configurator) and set fields.{m} to its name.",
            )
        if scan.name in error and re.search(r"не найден|not found|нет такой|unknown", error, re.IGNORECASE):
            hint = f', or to "" if the installation keeps no {meaning.replace("_", " ")}' if optional else ""
            return ExtractError(
                self.source.name,
                f"the installation has no structure {scan.name!r} (objects.{meaning} in sources.yaml; it said: "
                f"{error}). Look the structure up in the installation's Конфигуратор (/configurator) and set "
                f"objects.{meaning} to its name{hint}.",
            )
        return ExtractError(
            self.source.name, f"the XML API refused to list {scan.name} (objects.{meaning}): {error}"
        )


def extract(
    source: RosBiznesSoftSource,
    conn: psycopg.Connection,
    mode: Mode,
    report: RunReport,
    client: RosBiznesSoftClient | None = None,
) -> None:
    """Land every structure of one installation (see the module's docstring)."""
    own = client is None
    client = client or RosBiznesSoftClient(source)
    report.stats = client.stats
    try:
        RosBiznesSoftExtraction(source, conn, mode, report, client).run()
    finally:
        if own:
            client.close()
