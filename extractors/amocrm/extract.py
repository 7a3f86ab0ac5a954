"""What is read from an amoCRM account and how it lands in ``raw_amocrm``.

- Leads, deleted leads (``with=only_deleted``; their notes are marked deleted with them),
  common notes, contacts and companies are read
  by modification time: ``order[updated_at]=asc`` from the cursor minus an overlap, 250 a page.
  The next page is asked for from the last modification time seen (keyset), not by page number:
  a record changed during the run moves to the end of the list, and page numbers would then
  skip the record that slid into the page already read. The cursor (the latest ``updated_at``
  landed) is committed with each page.
- Status-change events (``lead_status_changed``, immutable, newest first, 100 a page) are read
  from the cursor minus the overlap by following ``_links.next`` and appended once by their
  id; the cursor moves when the last page is in.
- Pipelines (with their statuses), loss reasons and users are small: read whole every run;
  unchanged rows are not rewritten, and whatever is no longer listed is marked deleted.
- ``mode="full"`` reads everything from the beginning and then marks leads, notes, contacts
  and companies that are no longer served as deleted.

Every list is read ahead (``extractors.common.readahead``): a page is checked as it arrives,
and the request for the next one (its link, or its keyset position) goes out while the page
lands with its cursor. Still one request at a time through the account's limiter, and pages
land in order, each in its own transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from dwh.config.models import AmoCRMSource
from extractors.amocrm.client import AmoClient
from extractors.amocrm.records import CheckedPage, Shape, check_page
from extractors.common.errors import ExtractError
from extractors.common.landing import RawLanding
from extractors.common.ratelimit import SlidingWindowLimiter
from extractors.common.readahead import read_ahead
from extractors.common.run import Mode, RunReport
from extractors.common.state import get_cursor, set_cursor

SYSTEM = "amocrm"
ENTITIES: tuple[str, ...] = (
    "leads", "pipelines", "loss_reasons", "events", "users", "notes", "contacts", "companies",
)  # fmt: skip
OVERLAP_SECONDS = 300  # re-read this much before the cursor: clock skew and late writes
PAGE_LIMIT = 250  # the most amoCRM serves per page of leads, notes, contacts, companies, users
EVENTS_LIMIT = 100  # the most amoCRM serves per page of events


@dataclass(frozen=True)
class Feed:
    """A list read by modification time, with a cursor of its own."""

    entity: str  # the raw table
    cursor: str  # the cursor's name in ops.extract_cursors
    path: str
    key: str  # _embedded.<key>
    shape: Shape
    params: tuple[tuple[str, str], ...] = ()
    deleted: bool = False  # the list of deleted records: they land marked deleted


@dataclass(frozen=True)
class Ask:
    """One request of a list: a path or the API's next link, and the query."""

    url: str
    key: str  # _embedded.<key>
    params: tuple[tuple[str, str], ...] = ()
    since: int | None = None  # keyset paging: filter[updated_at][from]
    page_no: int = 1  # keyset paging: pages within one ``since``


@dataclass(frozen=True)
class Listing:
    """A small list read whole every run."""

    entity: str
    path: str
    key: str
    shape: Shape
    params: tuple[tuple[str, str], ...] = ()


LEADS = Feed("leads", "leads", "/api/v4/leads", "leads", Shape("lead"), (("with", "contacts,loss_reason"),))
DELETED_LEADS = Feed(
    "leads", "leads_deleted", "/api/v4/leads", "leads", Shape("deleted lead"), (("with", "only_deleted"),),
    deleted=True,
)  # fmt: skip
NOTES = Feed(
    "notes", "notes", "/api/v4/leads/notes", "notes", Shape("note"), (("filter[note_type]", "common"),)
)
CONTACTS = Feed("contacts", "contacts", "/api/v4/contacts", "contacts", Shape("contact"))
COMPANIES = Feed("companies", "companies", "/api/v4/companies", "companies", Shape("company"))

PIPELINES = Listing(
    "pipelines", "/api/v4/leads/pipelines", "pipelines",
    Shape("pipeline", time_field=None, embedded_list="statuses"),
)  # fmt: skip
LOSS_REASONS = Listing(
    "loss_reasons", "/api/v4/leads/loss_reasons", "loss_reasons", Shape("loss reason", time_required=False),
    (("limit", str(PAGE_LIMIT)),),
)  # fmt: skip
USERS = Listing(
    "users", "/api/v4/users", "users", Shape("user", time_field=None), (("limit", str(PAGE_LIMIT)),)
)
EVENTS_PATH = "/api/v4/events"
EVENT_SHAPE = Shape("event", id_kind="str", time_field="created_at")


def _seconds(cursor: dict[str, Any] | None, key: str) -> int | None:
    value = (cursor or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Extraction:
    def __init__(
        self,
        client: AmoClient,
        conn: psycopg.Connection,
        source: AmoCRMSource,
        mode: Mode,
        report: RunReport,
        overlap_seconds: int = OVERLAP_SECONDS,
    ):
        self.client, self.conn, self.mode, self.report = client, conn, mode, report
        self.name = source.name
        self.overlap = overlap_seconds
        self.landing = RawLanding(conn, SYSTEM, source.name)

    def run(self) -> None:
        with self.conn.transaction():
            for entity in ENTITIES:
                self.landing.ensure(entity)
        for listing in (PIPELINES, LOSS_REASONS, USERS):
            self.read_listing(listing)
        live = self.read_feed(LEADS)
        deleted = self.read_feed(DELETED_LEADS)
        self.read_events()
        present = {"leads": live - deleted, "notes": self.read_feed(NOTES)}
        present["contacts"] = self.read_feed(CONTACTS)
        present["companies"] = self.read_feed(COMPANIES)
        if self.mode == "full":
            for entity, ids in present.items():
                self.reconcile(entity, ids)

    # -- reading and landing pages -------------------------------------------------------
    def pages(
        self, shape: Shape, first: Ask, after: Callable[[Ask, CheckedPage], Ask | None]
    ) -> Iterator[CheckedPage]:
        """A list's pages, checked, in order; the next request is out while a page lands."""

        def fetch(ask: Ask) -> CheckedPage:
            page = self.client.page(ask.url, ask.key, dict(ask.params) if ask.params else None)
            return check_page(shape, page.records, page.next_url)

        return read_ahead(fetch, first, after)

    def follow(self, path: str, key: str, shape: Shape, params: dict[str, str]) -> Iterator[CheckedPage]:
        """Every page of a list, following ``_links.next``."""
        seen = {self.client.url(path)}

        def after(_: Ask, page: CheckedPage) -> Ask | None:
            if page.next_url is None or not page.served:
                return None
            if page.next_url in seen:
                raise ExtractError(
                    self.name, f"amoCRM's next link of {path} points back to a page already read"
                )
            seen.add(page.next_url)
            return Ask(page.next_url, key)

        return self.pages(shape, Ask(path, key, tuple(params.items())), after)

    def land(self, entity: str, page: CheckedPage, *, deleted: bool = False, append: bool = False) -> None:
        """Land one checked page (inside the caller's transaction); rejected records go to
        ops.rejects with the reason."""
        for checked, record in page.rejected:
            self.landing.reject(entity, checked.record_id, checked.problem or "invalid", record)
            self.report.add(self.report.rejects, entity, 1)
        if append:
            written = self.landing.append(entity, page.records)
        else:
            written = self.landing.upsert(entity, page.records, deleted=deleted)
        self.report.add(self.report.deleted if deleted else self.report.records, entity, written)

    # -- the lists ------------------------------------------------------------------------
    def read_listing(self, listing: Listing) -> None:
        present: set[str] = set()
        for page in self.follow(listing.path, listing.key, listing.shape, dict(listing.params)):
            if not page.served:
                break
            with self.conn.transaction():
                self.land(listing.entity, page)
            present.update(page.ids)
        self.reconcile(listing.entity, present)  # read whole: what is not listed is gone

    def read_feed(self, feed: Feed) -> set[str]:
        """Keyset paging over ``updated_at``; returns the ids landed (for reconciliation)."""
        high = _seconds(get_cursor(self.conn, self.name, feed.cursor), "updated_at")

        def keyset(since: int | None, page_no: int) -> Ask:
            params = {**dict(feed.params), "limit": str(PAGE_LIMIT), "order[updated_at]": "asc"}
            if since is not None:
                params["filter[updated_at][from]"] = str(since)
            if page_no > 1:
                params["page"] = str(page_no)
            return Ask(feed.path, feed.key, tuple(params.items()), since, page_no)

        def after(ask: Ask, page: CheckedPage) -> Ask | None:
            if page.next_url is None or not page.served:
                return None
            # from one second before the latest time on the page (ties on the boundary are read
            # again and land as no-ops); a page all within one second goes on by page number
            top = max(page.seconds, default=None)
            if top is None or (ask.since is not None and top - 1 <= ask.since):
                return keyset(ask.since, ask.page_no + 1)
            return keyset(top - 1, 1)

        since = None if self.mode == "full" or high is None else max(0, high - self.overlap)
        present: set[str] = set()
        for page in self.pages(feed.shape, keyset(since, 1), after):
            if not page.served:
                continue
            with self.conn.transaction():
                self.land(feed.entity, page, deleted=feed.deleted)
                if feed.deleted:
                    self.notes_go_with(page.ids)
                if page.seconds:
                    high = max(high or 0, max(page.seconds))
                if high is not None:
                    set_cursor(self.conn, self.name, feed.cursor, {"updated_at": high})
            present.update(page.ids)
        if high is not None:
            self.report.cursors[feed.cursor] = {"updated_at": high}
        return present

    def notes_go_with(self, lead_ids: list[str]) -> None:
        """A deleted lead's notes are no longer served: mark them deleted with it."""
        if not lead_ids:
            return
        rows = self.conn.execute(
            """select id from raw_amocrm.notes
               where connection_name = %s and not is_deleted and record ->> 'entity_id' = any(%s)""",
            (self.name, lead_ids),
        ).fetchall()
        gone = self.landing.mark_deleted("notes", [r[0] for r in rows])
        self.report.add(self.report.deleted, "notes", gone)

    def read_events(self) -> None:
        stored = _seconds(get_cursor(self.conn, self.name, "events"), "created_at")
        params = {"filter[type]": "lead_status_changed", "limit": str(EVENTS_LIMIT)}
        if self.mode != "full" and stored is not None:
            params["filter[created_at][from]"] = str(max(0, stored - self.overlap))
        high = stored
        written_cursor = False
        for page in self.follow(EVENTS_PATH, "events", EVENT_SHAPE, params):
            if not page.served:
                break
            with self.conn.transaction():
                self.land("events", page, append=True)
                if page.seconds:
                    high = max(high or 0, max(page.seconds))
                if page.next_url is None and high is not None:  # the last page: everything is in
                    set_cursor(self.conn, self.name, "events", {"created_at": high})
                    written_cursor = True
        if high is not None and high != stored and not written_cursor:
            with self.conn.transaction():
                set_cursor(self.conn, self.name, "events", {"created_at": high})
        if high is not None:
            self.report.cursors["events"] = {"created_at": high}

    def reconcile(self, entity: str, present: set[str]) -> None:
        with self.conn.transaction():
            gone = self.landing.reconcile(entity, present)
        self.report.add(self.report.deleted, entity, gone)


def extract(
    source: AmoCRMSource,
    conn: psycopg.Connection,
    mode: Mode,
    report: RunReport,
    *,
    limiter: SlidingWindowLimiter | None = None,
    backoff_base: float = 0.5,
    overlap_seconds: int = OVERLAP_SECONDS,
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Extract one amoCRM connection into raw_amocrm (the runner's entry point)."""
    if mode not in ("incremental", "full"):
        raise ValueError(f"mode must be incremental or full, not {mode!r}")
    if not conn.autocommit:
        raise ValueError(
            "an autocommit connection is needed: every page and every new token commits on its own"
        )
    with AmoClient(
        source, conn, stats=report.stats, limiter=limiter, backoff_base=backoff_base, wall_clock=wall_clock
    ) as client:
        waited = client.limiter.waited
        try:
            Extraction(client, conn, source, mode, report, overlap_seconds).run()
        finally:
            report.stats.waited_seconds += client.limiter.waited - waited
