"""What is read from a Megaplan account and how it is landed in ``raw_megaplan``.

Every run reads, in full, the small collections (custom deal fields, programs and their
states, employees, contractor companies) and the deal collection (100 deals a request, the
fields that tell a change). A deal whose served record differs from the landed one (or every
deal, in mode ``full``) has its status history and comments read (one request each) and
landed in the SAME transaction as the deal record: a run that dies midway leaves each deal
either with its new record and its new history, or with neither, and the next run picks up
what is left. A landed deal missing from the collection is looked up once by id; a 404 marks
it, its history rows and its comments deleted. See README.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from dwh.config.models import MegaplanSource
from extractors.common.errors import ExtractError
from extractors.common.landing import RawLanding, RawRecord
from extractors.common.run import Mode, RunReport
from extractors.common.state import get_cursor, set_cursor
from extractors.megaplan.client import MegaplanClient, NotFound, encode_params
from extractors.megaplan.records import (
    CONTRACTOR_FIELDS,
    DEAL_FIELDS,
    EMPLOYEE_FIELDS,
    PROGRAM_FIELDS,
    child_id,
    deal_of,
    entity_id,
    parse_time,
    problem,
)

SYSTEM = "megaplan"
# a query string longer than this is refused by common web servers (nginx: 8 KB per header line)
MAX_QUERY_CHARS = 7000
Record = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class MegaplanExtraction:
    """One run over one Megaplan account."""

    def __init__(
        self,
        source: MegaplanSource,
        conn: psycopg.Connection,
        mode: Mode,
        report: RunReport,
        client: MegaplanClient,
    ):
        self.source, self.conn, self.mode, self.report, self.client = source, conn, mode, report, client
        self.landing = RawLanding(conn, SYSTEM, source.name)
        self.page_size = source.page_size

    def run(self) -> None:
        custom_fields = self.deal_fields()
        program_ids = self.programs()
        self.program_states(program_ids)
        self.collection("employees", "employee", {"fields": list(EMPLOYEE_FIELDS)}, None)
        self.collection(
            "contractor_companies", "contractorCompany", {"fields": list(CONTRACTOR_FIELDS)}, "timeUpdated"
        )
        self.deals(custom_fields)

    # -- landing helpers ------------------------------------------------------------------
    def cursor(self, entity: str) -> Record:
        return dict(get_cursor(self.conn, self.source.name, entity) or {})

    def save_cursor(self, entity: str, cursor: Record) -> None:
        set_cursor(self.conn, self.source.name, entity, cursor)
        self.report.cursors[entity] = dict(cursor)

    def validated(
        self, entity: str, rows: Iterable[Any], time_field: str | None, deal_id: str | None = None
    ) -> list[RawRecord]:
        """Rows that pass the checks, as landing records; the others are rejected with their reason
        (inside the caller's transaction)."""
        out: list[RawRecord] = []
        for row in rows:
            reason = problem(entity, row, time_field)
            rid = entity_id(row)
            if reason:
                prefix = f"deal {deal_id}: " if deal_id else ""
                self.landing.reject(
                    entity, child_id(deal_id, rid) if deal_id and rid else rid, prefix + reason, row
                )
                self.report.add(self.report.rejects, entity, 1)
                continue
            assert rid is not None
            updated = parse_time(row.get(time_field)) if time_field else None
            out.append(RawRecord(child_id(deal_id, rid) if deal_id else rid, row, updated))
        return out

    def upsert(self, entity: str, records: list[RawRecord]) -> None:
        written = self.landing.upsert(entity, records)
        if written:
            self.report.add(self.report.records, entity, written)

    def mark_deleted(self, entity: str, ids: Iterable[str]) -> None:
        n = self.landing.mark_deleted(entity, ids)
        if n:
            self.report.add(self.report.deleted, entity, n)

    def reconcile(self, entity: str, present: Iterable[str]) -> None:
        n = self.landing.reconcile(entity, present)
        if n:
            self.report.add(self.report.deleted, entity, n)

    def _table(self, entity: str) -> sql.Composed:
        self.landing.ensure(entity)
        return sql.Identifier(f"raw_{SYSTEM}", entity)

    def landed_records(self, entity: str) -> dict[str, Record]:
        rows = self.conn.execute(
            sql.SQL("select id, record from {} where connection_name = %s and not is_deleted").format(
                self._table(entity)
            ),
            (self.source.name,),
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def landed_children(self, entity: str) -> dict[str, set[str]]:
        """deal id -> the landing ids of its rows (history or comments) not marked deleted."""
        out: dict[str, set[str]] = {}
        for landing_id in self.landing.landed_ids(entity):
            out.setdefault(deal_of(landing_id), set()).add(landing_id)
        return out

    # -- small collections ----------------------------------------------------------------
    def collection(
        self, entity: str, path: str, params: Record | None, time_field: str | None
    ) -> list[Record]:
        """Every record of a collection, page by page; what the account no longer serves is
        marked deleted once the last page is in. Returns the records landed."""
        cursor = self.cursor(entity)
        seen: list[Record] = []
        for rows in self.client.pages(path, params, entity.replace("_", " "), self.page_size):
            with self.conn.transaction():
                records = self.validated(entity, rows, time_field)
                self.upsert(entity, records)
                seen.extend(r.record for r in records)
                cursor["records"] = len(seen)
                self.save_cursor(entity, cursor)
        with self.conn.transaction():
            self.reconcile(entity, [entity_id(r) or "" for r in seen])
            cursor.update(records=len(seen), read_at=_now())
            self.save_cursor(entity, cursor)
        return seen

    def deal_fields(self) -> list[str]:
        """The custom deal fields (of every program) to ask of the deal collection: all of them,
        or those ``custom_fields`` names (by API name or title)."""
        fields = self.collection("deal_fields", "deal/extraFields", None, None)
        wanted = self.source.custom_fields
        names = {
            str(f["name"])
            for f in fields
            if isinstance(f.get("name"), str)
            and (wanted is None or f["name"] in wanted or f.get("hint") in wanted)
        }
        return sorted(names)

    def programs(self) -> list[str]:
        params = {"withInactivePrograms": True, "fields": list(PROGRAM_FIELDS)}
        return [entity_id(p) or "" for p in self.collection("programs", "program", params, None)]

    def program_states(self, program_ids: list[str]) -> None:
        entity = "program_states"
        cursor = self.cursor(entity)
        present: list[str] = []
        for program_id in program_ids:
            try:
                pages = list(self.client.pages(f"program/{program_id}/states", None, f"states of program {program_id}",
                                               self.page_size))  # fmt: skip
            except NotFound:
                continue  # the program was deleted while we read: its states go with it
            with self.conn.transaction():
                for rows in pages:
                    records = self.validated(entity, rows, None)
                    self.upsert(entity, records)
                    present.extend(r.id for r in records)
                cursor["records"] = len(present)
                self.save_cursor(entity, cursor)
        with self.conn.transaction():
            self.reconcile(entity, present)
            cursor.update(records=len(present), programs=len(program_ids), read_at=_now())
            self.save_cursor(entity, cursor)

    # -- deals, their history and comments ------------------------------------------------
    def deals(self, custom_fields: list[str]) -> None:
        landed = self.landed_records("deals")
        children = {e: self.landed_children(e) for e in ("status_history", "comments")}
        cursor = self.cursor("deals")
        cursor.update(strategy="full read" if self.mode == "full" or not landed else "changed deals", pages=0)
        cursor.update(changed=0)
        params = {"fields": [*DEAL_FIELDS, *custom_fields]}
        if len(encode_params(params)) > MAX_QUERY_CHARS:
            raise ExtractError(
                self.source.name,
                f"the deal list would ask for {len(custom_fields)} custom fields in a "
                f"{len(encode_params(params))}-character query string, longer than web servers accept "
                f"({MAX_QUERY_CHARS}): name the fields the warehouse needs (the loss reason's, the "
                "comment's) under custom_fields in sources.yaml",
            )
        seen: set[str] = set()
        for rows in self.client.pages("deal", params, "deals", self.page_size):
            cursor["pages"] += 1
            self.deal_page(rows, landed, children, seen, cursor)
        vanished = sorted(set(landed) - seen)
        gone = [deal_id for deal_id in vanished if not self.deal_exists(deal_id)]
        with self.conn.transaction():
            self.mark_deleted("deals", gone)
            for entity, by_deal in children.items():
                self.mark_deleted(entity, [i for d in gone for i in by_deal.get(d, ())])
            cursor.update(deals=len(seen), deleted=len(gone), read_at=_now())
            if self.mode == "full":
                cursor["last_full_reconciliation"] = _now()
            self.save_cursor("deals", cursor)

    def deal_page(
        self,
        rows: list[Any],
        landed: dict[str, Record],
        children: dict[str, dict[str, set[str]]],
        seen: set[str],
        cursor: Record,
    ) -> None:
        """One page of the deal collection: the changed deals' history and comments are read,
        then all of it lands in one transaction."""
        bad = [r for r in rows if problem("deals", r, "timeUpdated")]
        good = [r for r in rows if not problem("deals", r, "timeUpdated")]
        changed = [r for r in good if self.mode == "full" or landed.get(entity_id(r) or "") != r]
        fetched: dict[str, tuple[list[Any], list[Any]]] = {}
        for record in changed:
            deal_id = entity_id(record) or ""
            try:
                fetched[deal_id] = (self.history(deal_id), self.comments(deal_id))
            except NotFound:
                continue  # deleted since the page was served: the next run confirms it
        missing = _missing(changed, fetched)
        seen.update(i for i in (entity_id(r) for r in good) if i and i not in missing)
        with self.conn.transaction():
            self.validated("deals", bad, "timeUpdated")
            for deal_id, (history, comments) in fetched.items():
                self.land_children("status_history", deal_id, history, "toStatusUpdated", children)
                self.land_children("comments", deal_id, comments_only(comments), "timeUpdated", children)
            records = self.validated("deals", [r for r in changed if entity_id(r) in fetched], "timeUpdated")
            self.upsert("deals", records)
            for record in records:
                landed[record.id] = record.record
            cursor["changed"] = cursor.get("changed", 0) + len(records)
            cursor["deals"] = len(seen)
            self.save_cursor("deals", cursor)

    def land_children(
        self,
        entity: str,
        deal_id: str,
        rows: list[Any],
        time_field: str,
        children: dict[str, dict[str, set[str]]],
    ) -> None:
        records = self.validated(entity, rows, time_field, deal_id=deal_id)
        self.upsert(entity, records)
        now = {r.id for r in records}
        before = children[entity].get(deal_id, set())
        self.mark_deleted(entity, sorted(before - now))
        children[entity][deal_id] = now

    def history(self, deal_id: str) -> list[Any]:
        what = f"the status history of deal {deal_id}"
        return [row for page in self.client.pages(f"deal/{deal_id}/statusHistory", None, what, self.page_size)
                for row in page]  # fmt: skip

    def comments(self, deal_id: str) -> list[Any]:
        what = f"the comments of deal {deal_id}"
        return [row for page in self.client.pages(f"deal/{deal_id}/comments", None, what, self.page_size)
                for row in page]  # fmt: skip

    def deal_exists(self, deal_id: str) -> bool:
        """A second look at a deal the collection no longer lists: 404 means deleted."""
        try:
            self.client.get(f"deal/{deal_id}", None, f"deal {deal_id}")
        except NotFound:
            return False
        return True


def comments_only(feed: list[Any]) -> list[Any]:
    """The comments of a deal's feed: it also serves the journal's field changes
    (``FieldChange``, ``BasedOnHistory``), which the status history already covers."""
    return [
        item for item in feed if not isinstance(item, dict) or item.get("contentType", "Comment") == "Comment"
    ]


def _missing(changed: list[Record], fetched: dict[str, Any]) -> set[str]:
    """Changed deals whose history could not be read (gone meanwhile)."""
    return {entity_id(r) or "" for r in changed} - set(fetched)


def extract(
    source: MegaplanSource,
    conn: psycopg.Connection,
    mode: Mode,
    report: RunReport,
    client: MegaplanClient | None = None,
) -> None:
    """Land one Megaplan account (see the module's docstring)."""
    own = client is None
    client = client or MegaplanClient(source)
    report.stats = client.stats
    try:
        MegaplanExtraction(source, conn, mode, report, client).run()
    finally:
        if own:
            client.close()
