"""What is read from a 1C base and how it is landed in ``raw_onec``.

1C has no modification time over OData, so the incremental run works from what is already
landed (see README.md, "Incremental strategy"):

- catalogs: one light request per page of ``$select=Ref_Key,DataVersion``; only new or
  changed objects (their ``DataVersion`` differs from the landed record's) are read in full,
  by ``Ref_Key eq guid'…' or …`` filters that keep the URL short, or by one full scan when
  that takes fewer requests; a key gone from the base (after a second look) is marked deleted;
- the stage statistics register (no ``DataVersion``): the rows of every deal that was new,
  changed or gone, plus every row started or ended since the latest start date landed (minus
  an overlap);
- exchange rates: every record from the latest ``Period`` landed minus an overlap.

Mode ``full`` reads every set in full and marks what disappeared as deleted. Every page is
one transaction holding its records and the entity's cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from dwh.config.models import OneCSource
from extractors.common.errors import ExtractError
from extractors.common.landing import RawLanding, RawRecord
from extractors.common.run import Mode, RunReport
from extractors.common.state import get_cursor, set_cursor
from extractors.onec.client import OneCClient, guid_filter, unpublished_message
from extractors.onec.sets import (
    ALL_SETS,
    CATALOGS,
    DATE_FORMAT,
    DEAL_STAGE_STATS,
    DEALS,
    EXCHANGE_RATES,
    Catalog,
    Register,
    catalog_problem,
    is_guid,
    parse_date,
    register_problem,
)

SYSTEM = "onec"
# a page of keys is this many times a page of records: two short fields per row
KEY_PAGE_FACTOR = 10
MAX_KEY_PAGE = 100_000
# the query string of a request by keys stays under this many characters (IIS refuses
# query strings over 2048 by default)
MAX_FILTER_CHARS = 1800
# late writes: a stage row written with a start date a little before the latest one landed
STATS_OVERLAP = timedelta(hours=1)
# exchange rates are loaded for a day or two ahead and corrected now and then
RATES_OVERLAP = timedelta(days=7)
# more deals than this waiting for their register rows: read the whole register instead
MAX_PENDING_DEALS = 2000


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def key_chunks(clauses: Sequence[str], budget: int = MAX_FILTER_CHARS) -> Iterator[list[int]]:
    """Indexes of ``clauses`` in groups whose ``or``-joined, percent-encoded filter fits ``budget``."""
    group: list[int] = []
    size = 0
    for i, clause in enumerate(clauses):
        length = len(quote(clause, safe="$,'():")) + len("%20or%20")
        if group and size + length > budget:
            yield group
            group, size = [], 0
        group.append(i)
        size += length
    if group:
        yield group


class OneCExtraction:
    """One run over one 1C base."""

    def __init__(
        self, source: OneCSource, conn: psycopg.Connection, mode: Mode, report: RunReport, client: OneCClient
    ):
        self.source, self.conn, self.mode, self.report, self.client = source, conn, mode, report, client
        self.landing = RawLanding(conn, SYSTEM, source.name)
        self.page_size = source.page_size
        self.key_page_size = min(MAX_KEY_PAGE, self.page_size * KEY_PAGE_FACTOR)

    # -- the run --------------------------------------------------------------------------
    def run(self) -> None:
        self.check_published()
        for catalog in CATALOGS:
            self.catalog(catalog)
        self.stage_stats()
        self.exchange_rates()

    def check_published(self) -> None:
        """One request for the service document: every set must be in the OData composition."""
        published = set(self.client.published_sets())
        missing = [s.set_name for s in ALL_SETS if s.set_name not in published]
        if missing:
            if not published:
                raise ExtractError(
                    self.source.name,
                    "the OData service document of the 1C base is empty: nothing is published. "
                    + unpublished_message(missing),
                )
            raise ExtractError(self.source.name, unpublished_message(missing))

    # -- landing helpers ------------------------------------------------------------------
    def _table(self, entity: str) -> sql.Composed:
        self.landing.ensure(entity)
        return sql.Identifier(f"raw_{SYSTEM}", entity)

    def landed_versions(self, entity: str) -> dict[str, str | None]:
        rows = self.conn.execute(
            sql.SQL(
                "select id, record ->> 'DataVersion' from {} where connection_name = %s and not is_deleted"
            ).format(self._table(entity)),
            (self.source.name,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def cursor(self, entity: str) -> dict[str, Any]:
        return dict(get_cursor(self.conn, self.source.name, entity) or {})

    def save_cursor(self, entity: str, cursor: dict[str, Any]) -> None:
        set_cursor(self.conn, self.source.name, entity, cursor)
        # for the run's metadata: a list (the deals waiting for their register rows) as its length
        self.report.cursors[entity] = {k: len(v) if isinstance(v, list) else v for k, v in cursor.items()}

    def land(
        self, entity: str, rows: Iterable[Any], register: Register | None = None
    ) -> list[dict[str, Any]]:
        """Validate and upsert (inside the caller's transaction); return the landed records."""
        good: list[dict[str, Any]] = []
        records: list[RawRecord] = []
        for row in rows:
            problem = register_problem(register, row) if register else catalog_problem(row)
            if problem:
                record_id = _guess_id(row, register)
                self.landing.reject(entity, record_id, f"{entity}: {problem}", row)
                self.report.add(self.report.rejects, entity, 1)
                continue
            record_id = register.record_id(row) if register else row["Ref_Key"]
            records.append(RawRecord(record_id, row, None))  # 1C serves no modification time
            good.append(row)
        written = self.landing.upsert(entity, records)
        if written:
            self.report.add(self.report.records, entity, written)
        return good

    def mark_deleted(self, entity: str, ids: Iterable[str]) -> int:
        n = self.landing.mark_deleted(entity, ids)
        if n:
            self.report.add(self.report.deleted, entity, n)
        return n

    # -- reading by keys ------------------------------------------------------------------
    def fetch_by_clauses(
        self, set_name: str, orderby: str, clauses: Sequence[str], select: str | None = None
    ) -> Iterator[list[Any]]:
        """Pages of the records matching ``clause or clause or …``, a URL-sized group at a time."""
        for group in key_chunks(clauses):
            filter_ = " or ".join(clauses[i] for i in group)
            yield from self.client.pages(set_name, orderby, self.page_size, filter_=filter_, select=select)

    def request_count_by_keys(self, clauses: Sequence[str]) -> int:
        return sum(1 for _ in key_chunks(clauses))

    def full_scan_pages(self, expected_records: int) -> int:
        return expected_records // self.page_size + 1

    # -- catalogs -------------------------------------------------------------------------
    def catalog(self, catalog: Catalog) -> None:
        entity = catalog.entity
        landed = self.landed_versions(entity)
        cursor = self.cursor(entity)
        if self.mode == "full" or not landed:
            if catalog is DEALS:
                self.stats_need_rescan()
            seen = self.catalog_full_scan(catalog, cursor, strategy="full scan")
            gone = sorted(set(landed) - seen)
            if self.mode == "full":
                cursor["last_full_reconciliation"] = _now()
            self.catalog_deleted(catalog, gone, landed, cursor)
            return

        served = self.key_scan(catalog)
        changed = sorted(k for k, version in served.items() if landed.get(k) != version)
        vanished = sorted(set(landed) - set(served))
        if vanished:  # look again: a key can slip between two pages while the base changes
            again = self.lookup_versions(catalog, vanished)
            changed = sorted({*changed, *(k for k, v in again.items() if landed.get(k) != v)})
            vanished = [k for k in vanished if k not in again]
        if catalog is DEALS and (changed or vanished):
            self.stats_pending([*changed, *vanished])
        cursor.update(records=len(served), changed=len(changed))
        clauses = [f"Ref_Key eq guid'{k}'" for k in changed]
        if changed and self.request_count_by_keys(clauses) > self.full_scan_pages(len(served)):
            self.catalog_full_scan(catalog, cursor, strategy="full scan (most changed)")
        elif changed:
            cursor["strategy"] = "changed keys"
            for page in self.fetch_by_clauses(catalog.set_name, catalog.orderby, clauses):
                with self.conn.transaction():
                    self.land(entity, page)
                    self.save_cursor(entity, cursor)
        else:
            cursor["strategy"] = "no change"
        self.catalog_deleted(catalog, vanished, landed, cursor)

    def catalog_full_scan(self, catalog: Catalog, cursor: dict[str, Any], strategy: str) -> set[str]:
        """Every record of the set, page by page; returns the keys seen."""
        seen: set[str] = set()
        cursor["strategy"] = strategy
        for page in self.client.pages(catalog.set_name, catalog.orderby, self.page_size):
            with self.conn.transaction():
                landed = self.land(catalog.entity, page)
                seen.update(r["Ref_Key"] for r in landed)
                cursor["records"] = len(seen)
                self.save_cursor(catalog.entity, cursor)
        return seen

    def catalog_deleted(
        self, catalog: Catalog, missing: list[str], landed: dict[str, str | None], cursor: dict[str, Any]
    ) -> None:
        """Mark deleted the keys the base no longer has, after one more look at them."""
        if missing and self.mode == "full":  # a full scan cannot tell a deletion from a shifted page
            again = self.lookup_versions(catalog, missing)
            if again:
                refetch = [f"Ref_Key eq guid'{k}'" for k in again]
                for page in self.fetch_by_clauses(catalog.set_name, catalog.orderby, refetch):
                    with self.conn.transaction():
                        self.land(catalog.entity, page)
                        self.save_cursor(catalog.entity, cursor)
            missing = [k for k in missing if k not in again]
            if catalog is DEALS and missing:
                self.stats_pending(missing)
        with self.conn.transaction():
            if missing:
                self.mark_deleted(catalog.entity, missing)
            cursor["deleted"] = len(missing)
            self.save_cursor(catalog.entity, cursor)

    def key_scan(self, catalog: Catalog) -> dict[str, str]:
        """``Ref_Key -> DataVersion`` of every object in the base (light pages)."""
        served: dict[str, str] = {}
        for page in self.client.pages(
            catalog.set_name, catalog.orderby, self.key_page_size, select="Ref_Key,DataVersion"
        ):
            for row in page:
                if isinstance(row, dict) and is_guid(row.get("Ref_Key")):
                    served[row["Ref_Key"]] = str(row.get("DataVersion"))
        return served

    def lookup_versions(self, catalog: Catalog, keys: Sequence[str]) -> dict[str, str]:
        """The ``DataVersion`` of those of ``keys`` the base still has."""
        found: dict[str, str] = {}
        clauses = [f"Ref_Key eq guid'{k}'" for k in keys if is_guid(k)]
        for page in self.fetch_by_clauses(catalog.set_name, catalog.orderby, clauses, "Ref_Key,DataVersion"):
            for row in page:
                if isinstance(row, dict) and is_guid(row.get("Ref_Key")):
                    found[row["Ref_Key"].lower()] = str(row.get("DataVersion"))
        wanted = {k.lower(): k for k in keys}
        return {wanted[k]: v for k, v in found.items() if k in wanted}

    # -- the stage statistics register ----------------------------------------------------
    def stats_need_rescan(self) -> None:
        """Deals are about to be read in full: the register will be read in full too (even if
        this run dies before it gets there)."""
        cursor = self.cursor(DEAL_STAGE_STATS.entity)
        cursor["rescan"] = True
        with self.conn.transaction():
            self.save_cursor(DEAL_STAGE_STATS.entity, cursor)

    def stats_pending(self, deal_keys: Iterable[str]) -> None:
        """Remember, before reading them, the deals whose register rows must be read again."""
        cursor = self.cursor(DEAL_STAGE_STATS.entity)
        pending = sorted({*cursor.get("pending_deals", []), *deal_keys})
        if len(pending) > MAX_PENDING_DEALS:
            cursor["rescan"], cursor["pending_deals"] = True, []
        else:
            cursor["pending_deals"] = pending
        with self.conn.transaction():
            self.save_cursor(DEAL_STAGE_STATS.entity, cursor)

    def stage_stats(self) -> None:
        register = DEAL_STAGE_STATS
        cursor = self.cursor(register.entity)
        landed = self.landed_versions(register.entity)
        pending = [k for k in cursor.get("pending_deals", []) if is_guid(k)]
        full = self.mode == "full" or cursor.get("rescan", True) or "high_water" not in cursor
        if not full:
            clauses = [f"Сделка_Key eq guid'{k}'" for k in pending]
            full = self.request_count_by_keys(clauses) > self.full_scan_pages(len(landed))
        if full:
            self.register_full_read(register, cursor, landed, _max_start)
            return
        by_deal: dict[str, set[str]] = {}
        for record_id in landed:
            by_deal.setdefault(record_id.split("|", 1)[0].lower(), set()).add(record_id)
        # (a) every row of the deals that were new, changed or gone
        for group in key_chunks([f"Сделка_Key eq guid'{k}'" for k in pending]):
            keys = [pending[i] for i in group]
            seen: set[str] = set()
            pages = list(
                self.client.pages(
                    register.set_name,
                    register.orderby,
                    self.page_size,
                    filter_=guid_filter("Сделка_Key", keys),
                )
            )
            with self.conn.transaction():
                for page in pages:
                    seen.update(register.record_id(r) for r in self.land(register.entity, page, register))
                    cursor["high_water"] = _max_start(page, cursor.get("high_water"))
                gone = {i for k in keys for i in by_deal.get(k.lower(), set())} - seen
                self.mark_deleted(register.entity, sorted(gone))
                done = {k.lower() for k in keys}
                cursor["pending_deals"] = [
                    k for k in cursor.get("pending_deals", []) if k.lower() not in done
                ]
                self.save_cursor(register.entity, cursor)
        # (b) every row started or ended since the latest start landed, minus the overlap
        since = _shift(cursor["high_water"], -STATS_OVERLAP)
        recent = f"ДатаНачала ge datetime'{since}' or ДатаОкончания ge datetime'{since}'"
        cursor["strategy"] = "changed deals and recent rows"
        for page in self.client.pages(register.set_name, register.orderby, self.page_size, filter_=recent):
            with self.conn.transaction():
                self.land(register.entity, page, register)
                cursor["high_water"] = _max_start(page, cursor["high_water"])
                self.save_cursor(register.entity, cursor)

    # -- exchange rates -------------------------------------------------------------------
    def exchange_rates(self) -> None:
        register = EXCHANGE_RATES
        cursor = self.cursor(register.entity)
        landed = self.landed_versions(register.entity)
        if self.mode == "full" or "high_water" not in cursor or not landed:
            self.register_full_read(register, cursor, landed, _max_period)
            return
        since = _shift(cursor["high_water"], -RATES_OVERLAP)
        cursor["strategy"] = f"Period from {since}"
        for page in self.client.pages(
            register.set_name, register.orderby, self.page_size, filter_=f"Period ge datetime'{since}'"
        ):
            with self.conn.transaction():
                self.land(register.entity, page, register)
                cursor["high_water"] = _max_period(page, cursor["high_water"])
                self.save_cursor(register.entity, cursor)

    # -- registers read in full -----------------------------------------------------------
    def register_full_read(
        self,
        register: Register,
        cursor: dict[str, Any],
        landed: dict[str, str | None],
        high_water: Any,
    ) -> None:
        """Every row, page by page; rows landed before and gone now (after a second look) are
        marked deleted. The cursor's high-water mark is complete only when the last page is in."""
        seen: set[str] = set()
        mark: str | None = None
        cursor["strategy"] = "full read"
        for page in self.client.pages(register.set_name, register.orderby, self.page_size):
            with self.conn.transaction():
                seen.update(register.record_id(r) for r in self.land(register.entity, page, register))
                mark = high_water(page, mark)
                cursor["rows"] = len(seen)
                self.save_cursor(register.entity, cursor)
        missing = sorted(set(landed) - seen)
        if missing:  # a second look: a row can slip between two pages while the base changes
            clauses = [register.key_clause(i) for i in missing]
            for page in self.fetch_by_clauses(register.set_name, register.orderby, clauses):
                with self.conn.transaction():
                    seen.update(register.record_id(r) for r in self.land(register.entity, page, register))
                    self.save_cursor(register.entity, cursor)
            missing = [i for i in missing if i not in seen]
        with self.conn.transaction():
            self.mark_deleted(register.entity, missing)
            if mark is not None:
                cursor["high_water"] = mark
            cursor.update(deleted=len(missing), last_full_read=_now())
            if register is DEAL_STAGE_STATS:
                cursor.update(rescan=False, pending_deals=[])
            self.save_cursor(register.entity, cursor)


def _guess_id(row: Any, register: Register | None) -> str | None:
    if not isinstance(row, dict):
        return None
    if register is None:
        value = row.get("Ref_Key")
        return str(value) if value is not None else None
    return "|".join(str(row.get(f)) for f in register.id_fields)


def _latest(values: Iterable[Any], current: str | None) -> str | None:
    dates = [d for d in (parse_date(v) for v in values) if d is not None and d.year > 1]
    if not dates:
        return current
    latest = max(dates).strftime(DATE_FORMAT)
    return latest if current is None or latest > current else current


def _max_start(page: list[Any], current: str | None) -> str | None:
    return _latest((r.get("ДатаНачала") for r in page if isinstance(r, dict)), current)


def _max_period(page: list[Any], current: str | None) -> str | None:
    return _latest((r.get("Period") for r in page if isinstance(r, dict)), current)


def _shift(value: str, delta: timedelta) -> str:
    moment = parse_date(value)
    if moment is None:
        return value
    try:
        return (moment + delta).strftime(DATE_FORMAT)
    except OverflowError:
        return "0001-01-01T00:00:00"  # 1C's empty date: every row


def extract(
    source: OneCSource,
    conn: psycopg.Connection,
    mode: Mode,
    report: RunReport,
    client: OneCClient | None = None,
) -> None:
    """Land every set of one 1C base (see the module's docstring)."""
    own = client is None
    client = client or OneCClient(source)
    report.stats = client.stats
    try:
        OneCExtraction(source, conn, mode, report, client).run()
    finally:
        if own:
            client.close()
