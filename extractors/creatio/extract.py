"""What is read from a Creatio site and how it is landed in ``raw_creatio``.

Every object is read by ``ModifiedOn`` (see README.md, "Incremental strategy"):

- incremental: the records modified since the latest ``ModifiedOn`` landed minus an overlap
  (late commits, clock skew between the site's application servers), in ``ModifiedOn, Id``
  order; the cursor is the data's own high-water mark, never the warehouse's clock;
- deletions: Creatio deletes physically and keeps no tombstones. An incremental run reads
  every opportunity's ``Id`` (one light request per 10 pages' worth of keys) and marks deleted
  the opportunities that are gone, with their stage history rows (Creatio deletes those with
  them); other objects' deletions are found by the full reconciliation;
- full (and the first run): every record, then every landed record the site no longer serves
  (after a second look by key) is marked deleted.

Every page is one transaction holding its records and the object's cursor.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from dwh.config.models import CreatioSource
from extractors.common.landing import RawLanding, RawRecord
from extractors.common.run import Mode, RunReport
from extractors.common.state import get_cursor, set_cursor
from extractors.creatio.client import CreatioClient
from extractors.creatio.sets import (
    OBJECTS,
    OPPORTUNITIES,
    STAGE_HISTORY,
    CreatioObject,
    odata_instant,
    parse_instant,
    record_problem,
)

SYSTEM = "creatio"
# records committed late with a ModifiedOn a little before the latest one landed
OVERLAP = timedelta(minutes=5)
# a page of keys is this many pages of records (one short field per row), within the row cap
KEY_PAGE_FACTOR = 10
MAX_KEY_PAGE = 20_000  # Creatio's default MaxEntityRowCount


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CreatioExtraction:
    """One run over one Creatio site."""

    def __init__(
        self,
        source: CreatioSource,
        conn: psycopg.Connection,
        mode: Mode,
        report: RunReport,
        client: CreatioClient,
    ):
        self.source, self.conn, self.mode, self.report, self.client = source, conn, mode, report, client
        self.landing = RawLanding(conn, SYSTEM, source.name)
        self.page_size = source.page_size
        self.key_page_size = min(MAX_KEY_PAGE, self.page_size * KEY_PAGE_FACTOR)

    # -- the run --------------------------------------------------------------------------
    def run(self) -> None:
        for obj in OBJECTS:
            read_in_full = self.read(obj)
            if obj is OPPORTUNITIES and not read_in_full:
                self.opportunity_deletions()

    def read(self, obj: CreatioObject) -> bool:
        """Land the object's changed records (all of them in a full read); True for a full read."""
        entity = obj.entity
        cursor = self.cursor(entity)
        high = parse_instant(cursor.get("high_water"))
        since = high - OVERLAP if high is not None and self.mode != "full" else None
        full = since is None
        cursor["strategy"] = "full read" if since is None else f"ModifiedOn from {odata_instant(since)}"
        seen: set[str] = set()
        pages = self.client.modified_pages(
            obj.set_name, since=since, base_filter=obj.base_filter, page_size=self.page_size
        )
        for page in pages:
            with self.conn.transaction():
                landed = self.land(entity, page)
                seen.update(r["Id"] for r in landed)
                moments = [m for m in (parse_instant(r["ModifiedOn"]) for r in landed) if m is not None]
                if moments and (high is None or max(moments) > high):
                    high = max(moments)
                if high is not None:
                    cursor["high_water"] = odata_instant(high)
                cursor["rows"] = len(seen)
                if obj.set_name in self.client.caps:
                    cursor["row_cap"] = self.client.caps[obj.set_name]
                self.save_cursor(entity, cursor)
        if full:
            self.reconcile(obj, seen, cursor)
        return full

    # -- deletions ------------------------------------------------------------------------
    def reconcile(self, obj: CreatioObject, seen: set[str], cursor: dict[str, Any]) -> None:
        """After a full read: landed records the site no longer serves are marked deleted,
        after a second look by key (a record can slip between two pages while the site changes)."""
        missing = sorted(self.landing.landed_ids(obj.entity) - seen)
        gone = self.still_missing(obj, missing)
        with self.conn.transaction():
            self.mark_deleted(obj.entity, gone)
            if obj is OPPORTUNITIES:
                self.stage_rows_gone_with(gone)
            cursor.update(deleted=len(gone), last_full_read=_now())
            self.save_cursor(obj.entity, cursor)

    def opportunity_deletions(self) -> None:
        """Every opportunity's Id, against what is landed: the gone ones are marked deleted."""
        served: set[str] = set()
        pages = self.client.key_pages(OPPORTUNITIES.set_name, base_filter=None, page_size=self.key_page_size)
        for page in pages:
            served.update(
                row["Id"] for row in page if isinstance(row, dict) and isinstance(row.get("Id"), str)
            )
        missing = sorted(self.landing.landed_ids(OPPORTUNITIES.entity) - served)
        gone = self.still_missing(OPPORTUNITIES, missing)
        if not gone:
            return
        cursor = self.cursor(OPPORTUNITIES.entity)
        with self.conn.transaction():
            self.mark_deleted(OPPORTUNITIES.entity, gone)
            self.stage_rows_gone_with(gone)
            cursor["deleted"] = cursor.get("deleted", 0) + len(gone)
            self.save_cursor(OPPORTUNITIES.entity, cursor)

    def still_missing(self, obj: CreatioObject, missing: list[str]) -> list[str]:
        if not missing:
            return []
        found: set[str] = set()
        for page in self.client.by_ids(obj.set_name, missing, select="Id"):
            found.update(str(row.get("Id")).lower() for row in page if isinstance(row, dict))
        return [key for key in missing if key.lower() not in found]

    def stage_rows_gone_with(self, opportunity_ids: list[str]) -> None:
        """Creatio deletes an opportunity's stage history with it."""
        if not opportunity_ids:
            return
        self.landing.ensure(STAGE_HISTORY.entity)
        rows = self.conn.execute(
            sql.SQL(
                "select id from {} where connection_name = %s and not is_deleted and record ->> 'OpportunityId' = any(%s)"
            ).format(sql.Identifier(f"raw_{SYSTEM}", STAGE_HISTORY.entity)),
            (self.source.name, opportunity_ids),
        ).fetchall()
        self.mark_deleted(STAGE_HISTORY.entity, [r[0] for r in rows])

    def mark_deleted(self, entity: str, ids: Iterable[str]) -> None:
        n = self.landing.mark_deleted(entity, ids)
        if n:
            self.report.add(self.report.deleted, entity, n)

    # -- landing --------------------------------------------------------------------------
    def cursor(self, entity: str) -> dict[str, Any]:
        return dict(get_cursor(self.conn, self.source.name, entity) or {})

    def save_cursor(self, entity: str, cursor: dict[str, Any]) -> None:
        set_cursor(self.conn, self.source.name, entity, cursor)
        self.report.cursors[entity] = dict(cursor)

    def land(self, entity: str, rows: Iterable[Any]) -> list[dict[str, Any]]:
        """Upsert the landable records of a page; reject the others with a reason. Returns the
        landed records."""
        good: list[dict[str, Any]] = []
        records: list[RawRecord] = []
        for row in rows:
            problem = record_problem(row)
            if problem:
                record_id = (
                    str(row.get("Id")) if isinstance(row, dict) and row.get("Id") is not None else None
                )
                self.landing.reject(entity, record_id, f"{entity}: {problem}", row)
                self.report.add(self.report.rejects, entity, 1)
                continue
            records.append(RawRecord(row["Id"], row, parse_instant(row["ModifiedOn"])))
            good.append(row)
        written = self.landing.upsert(entity, records)
        if written:
            self.report.add(self.report.records, entity, written)
        return good


def extract(
    source: CreatioSource,
    conn: psycopg.Connection,
    mode: Mode,
    report: RunReport,
    client: CreatioClient | None = None,
) -> None:
    """Land every object of one Creatio site (see the module's docstring)."""
    own = client is None
    client = client or CreatioClient(source)
    report.stats = client.stats
    try:
        CreatioExtraction(source, conn, mode, report, client).run()
    finally:
        if own:
            client.close()
