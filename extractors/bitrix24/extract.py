"""What the Bitrix24 extraction reads, how it lands, and how it stays incremental.

Lists read by ID (``plan.KeysetStream``), one cursor each in ``ops.extract_cursors``:

- ``deals``, ``companies``, ``contacts``, ``requisites`` (of companies and of contacts, two
  cursors): a *pass* reads every row with ``DATE_MODIFY >= since`` in ID order. When it ends,
  the next pass's ``since`` is the latest ``DATE_MODIFY`` it saw (or the portal's clock when
  the pass started, if earlier) minus an overlap window, against clock skew and late writes.
- ``stage_history``: append-only; a pass reads the rows after the highest ID landed.

A pass that is interrupted resumes where it stopped: its position is committed with every
round's records. Mode ``full`` (or a first run) reads everything; as it goes it marks landed
rows missing from each ID range it read as deleted (so an interrupted full pass still
reconciles completely when resumed).

Dictionaries -- ``categories``, ``statuses`` (the stages of every funnel), ``deal_fields``
(one row per field), ``users`` -- are small: they ride in the first batch of every run and
are reconciled each time. ``timeline_comments`` cost one command per deal, so they are read
only for lost deals (``STAGE_SEMANTIC_ID`` F) whose ``COMMENTS`` is empty, and only when the
deal changed (or on a full pass); the deals still owed a read are kept in the
``timeline_comments`` cursor, committed with the deals that made them due.

The stage history records no user. The responsible manager is the deal's ``ASSIGNED_BY_ID``
as landed in ``raw_bitrix24.deals`` at each extraction; dbt joins the two.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg

from dwh.config.models import Bitrix24Source
from extractors.bitrix24 import store
from extractors.bitrix24.client import Bitrix24Client, CommandAnswer
from extractors.bitrix24.plan import Call, KeysetStream, Planner, Round, StreamPage, row_id
from extractors.bitrix24.records import Reject, check, lower_id, parse_instant, upper_id
from extractors.common.landing import RawLanding, RawRecord
from extractors.common.run import Mode, RunReport
from extractors.common.state import get_cursor, set_cursor

SYSTEM = "bitrix24"
ENTITIES: tuple[str, ...] = (
    "deals",
    "stage_history",
    "categories",
    "statuses",
    "deal_fields",
    "users",
    "timeline_comments",
    "companies",
    "contacts",
    "requisites",
)
COMMENTS_CURSOR = "timeline_comments"


@dataclass(frozen=True)
class Tuning:
    """How a run paces itself. The defaults are the production ones; tests compress time by
    sharing one clock between the limiter, the backoff and a stand-in."""

    commands_per_batch: int = 50
    overlap: timedelta = timedelta(minutes=5)
    operating_budget: float = 480.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = 8
    backoff_base: float = 0.5


@dataclass(frozen=True)
class ListSpec:
    entity: str  # the raw table
    cursor: str  # the cursor's name in ops.extract_cursors
    key: str  # command key prefix in a batch
    method: str
    params: dict[str, Any]
    rows_key: str | None = None
    modified: bool = True  # False: append-only, read by ID alone
    updated: str = "DATE_MODIFY"  # the field landed as updated_at
    scope: tuple[str, str] | None = None  # the landed rows this list covers, for deletions


# biggest first: the slots left after single calls are shared in this order
LISTS: tuple[ListSpec, ...] = (
    ListSpec(
        "stage_history",
        "stage_history",
        "history",
        "crm.stagehistory.list",
        {"entityTypeId": 2},
        rows_key="items",
        modified=False,
        updated="CREATED_TIME",
    ),
    ListSpec("deals", "deals", "deals", "crm.deal.list", {"select": ["*", "UF_*"]}),
    ListSpec(
        "contacts", "contacts", "contacts", "crm.contact.list", {"select": ["*", "UF_*", "PHONE", "EMAIL"]}
    ),
    ListSpec("companies", "companies", "companies", "crm.company.list", {"select": ["*", "UF_*"]}),
    ListSpec(
        "requisites",
        "requisites:company",
        "rqco",
        "crm.requisite.list",
        {"filter": {"ENTITY_TYPE_ID": 4}},
        scope=("ENTITY_TYPE_ID", "4"),
    ),
    ListSpec(
        "requisites",
        "requisites:contact",
        "rqct",
        "crm.requisite.list",
        {"filter": {"ENTITY_TYPE_ID": 3}},
        scope=("ENTITY_TYPE_ID", "3"),
    ),
)


@dataclass
class Pass:
    """One read of a list, as its cursor records it."""

    spec: ListSpec
    full: bool
    after_id: int = 0
    since: str | None = None  # modified lists: DATE_MODIFY lower bound of this pass (None: all)
    max_modified: str | None = None
    started: str | None = None  # the portal's clock when the pass began
    last_id: int = 0  # append-only lists: the highest ID landed by finished passes
    in_pass: bool = True
    stream: KeysetStream | None = field(default=None, repr=False)

    @classmethod
    def open(cls, spec: ListSpec, cursor: dict[str, Any] | None, mode: Mode) -> Pass:
        c = cursor or {}
        last_id = int(c.get("last_id") or 0)
        if c.get("in_pass") and (mode == "incremental" or c.get("full")):  # resume
            found = cls(
                spec,
                full=bool(c.get("full")),
                after_id=int(c.get("after_id") or 0),
                since=c.get("since"),
                max_modified=c.get("max_modified"),
                started=c.get("started"),
                last_id=last_id,
            )
        elif not spec.modified:
            start = 0 if mode == "full" else last_id
            found = cls(spec, full=start == 0, after_id=start, last_id=last_id)
        else:
            since = None if mode == "full" else c.get("since")
            found = cls(spec, full=since is None, since=since)
        params = dict(spec.params)
        if found.since is not None:
            params["filter"] = {**params.get("filter", {}), ">=DATE_MODIFY": found.since}
        found.stream = KeysetStream(
            spec.cursor, spec.key, spec.method, params, rows_key=spec.rows_key, after_id=found.after_id
        )
        return found

    def advance(self, page: StreamPage, overlap: timedelta) -> None:
        self.after_id = page.stream.position
        if not page.done:
            return
        if self.spec.modified:
            if self.max_modified is not None:
                bound = parse_instant(self.max_modified)
                if self.started is not None:
                    bound = min(bound, parse_instant(self.started))
                self.since = (bound - overlap).isoformat()
            self.after_id = 0
        else:
            self.last_id = self.after_id if self.full else max(self.last_id, self.after_id)
            self.after_id = self.last_id
        self.in_pass, self.full, self.max_modified, self.started = False, False, None, None

    def note_modified(self, value: str) -> None:
        if self.max_modified is None or parse_instant(value) > parse_instant(self.max_modified):
            self.max_modified = value

    def cursor(self) -> dict[str, Any]:
        common = {"in_pass": self.in_pass, "full": self.full, "after_id": self.after_id}
        if self.spec.modified:
            return {"since": self.since, **common, "max_modified": self.max_modified, "started": self.started}
        return {"last_id": self.last_id, **common}


@dataclass
class Dictionary:
    entity: str
    outstanding: int = 0
    ids: set[str] = field(default_factory=set)
    finished: bool = False


def extract(
    source: Bitrix24Source,
    conn: psycopg.Connection,
    mode: Mode,
    report: RunReport,
    tuning: Tuning | None = None,
) -> None:
    """Extract one Bitrix24 connection (``Bitrix24Source``) into ``raw_bitrix24``."""
    tuning = tuning or Tuning()
    client = Bitrix24Client(
        source.name,
        source.webhook_url.get(),
        source.webhook_url.env_var,
        requests_per_second=source.requests_per_second,
        burst=source.burst,
        timeout=source.timeout_seconds,
        operating_budget=tuning.operating_budget,
        clock=tuning.clock,
        sleep=tuning.sleep,
        max_attempts=tuning.max_attempts,
        backoff_base=tuning.backoff_base,
    )
    report.stats = client.stats
    with client:
        Extraction(source.name, conn, mode, report, client, tuning).run()


class Extraction:
    def __init__(
        self,
        connection: str,
        conn: psycopg.Connection,
        mode: Mode,
        report: RunReport,
        client: Bitrix24Client,
        tuning: Tuning,
    ):
        self.connection, self.conn, self.mode, self.report = connection, conn, mode, report
        self.tuning = tuning
        self.landing = RawLanding(conn, SYSTEM, connection)
        self.planner = Planner(client, tuning.commands_per_batch)
        self.passes: dict[str, Pass] = {}
        self.pending: set[str] = set()  # deals whose timeline comments are owed
        self.queued: set[str] = set()
        self.comment_rows: dict[str, list[Any]] = {}
        self.dictionaries = {
            name: Dictionary(name) for name in ("categories", "statuses", "deal_fields", "users")
        }
        self.status_rows: dict[str, list[Any]] = {}
        self.status_requested: set[str] = set()
        self.categories: set[str] | None = None  # the funnels the portal listed, once complete
        self.rejected: set[tuple[str, str, str]] = set()

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> None:
        for entity in ENTITIES:
            self.landing.ensure(entity)
        for spec in LISTS:
            opened = Pass.open(spec, get_cursor(self.conn, self.connection, spec.cursor), self.mode)
            self.passes[spec.key] = opened
            assert opened.stream is not None
            if opened.full:  # what landed last time is what a full pass will read again
                opened.stream.expected_rows = store.count_landed(
                    self.conn, spec.entity, self.connection, opened.after_id, spec.scope
                )
            self.planner.add_stream(opened.stream)
            self.report.cursors[spec.cursor] = opened.cursor()
        owed = (get_cursor(self.conn, self.connection, COMMENTS_CURSOR) or {}).get("pending") or []
        self.pending = {str(d) for d in owed}
        for deal_id in sorted(self.pending, key=int):
            self._queue_comments(deal_id)
        self._queue_dictionaries()
        for round_ in self.planner.rounds():
            with self.conn.transaction():
                self._land(round_)

    def _queue_dictionaries(self) -> None:
        self._call("crm.category.list", {"entityTypeId": 2, "start": 0}, "categories")
        known = set(store.landed_ids(self.conn, "categories", self.connection)) | {"0"}
        for category in sorted(known, key=int):
            self._queue_statuses(category)
        self._call("crm.deal.fields", {}, "deal_fields")
        self._call("user.get", {"sort": "ID", "order": "ASC", "start": 0}, "users")

    def _call(self, method: str, params: dict[str, Any], entity: str, *tag: str) -> None:
        self.dictionaries[entity].outstanding += 1
        self.planner.add_call(Call(method, params, (entity, *tag)))

    def _queue_statuses(self, category: str) -> None:
        entity_id = "DEAL_STAGE" if category == "0" else f"DEAL_STAGE_{category}"
        self.status_requested.add(category)
        self._call(
            "crm.status.list",
            {"filter": {"ENTITY_ID": entity_id}, "order": {"SORT": "ASC"}},
            "statuses",
            category,
        )

    def _queue_comments(self, deal_id: str, start: int = 0) -> None:
        if start == 0:
            if deal_id in self.queued:
                return
            self.queued.add(deal_id)
            self.comment_rows[deal_id] = []
        params = {
            "filter": {"ENTITY_ID": deal_id, "ENTITY_TYPE": "deal"},
            "order": {"ID": "ASC"},
            "start": start,
        }
        self.planner.add_call(Call("crm.timeline.comment.list", params, ("comments", deal_id)))

    # -- one round: everything in one transaction ---------------------------------------------
    def _land(self, round_: Round) -> None:
        pending_before = set(self.pending)
        for page in round_.pages:
            self._land_page(page, round_)
        for call, answer in round_.answers:
            if call.tag[0] != "comments":
                self._land_dictionary(call, answer)
        self._land_comments([(call, answer) for call, answer in round_.answers if call.tag[0] == "comments"])
        self._finish_statuses()
        if self.pending != pending_before:
            cursor = {"pending": sorted(self.pending, key=int)}
            set_cursor(self.conn, self.connection, COMMENTS_CURSOR, cursor)
            self.report.cursors[COMMENTS_CURSOR] = cursor

    def _land_page(self, page: StreamPage, round_: Round) -> None:
        opened = self.passes[page.stream.key]
        spec = opened.spec
        records, rejects = check(spec.method, page.rows, upper_id, spec.updated)
        self._reject(spec.entity, rejects)
        if opened.started is None and round_.server_time is not None:
            opened.started = round_.server_time.isoformat()
        changed = (
            store.changed_ids(self.conn, spec.entity, self.connection, records)
            if spec.entity == "deals"
            else set()
        )
        if spec.modified or opened.full:
            written = self.landing.upsert(spec.entity, records)
        else:
            written = self.landing.append(spec.entity, records)
        self.report.add(self.report.records, spec.entity, written)
        if spec.modified:
            for record in records:
                opened.note_modified(record.record[spec.updated])
        if opened.full:
            present = [str(i) for i in (row_id(row) for row in page.rows) if i is not None]
            gone = store.mark_missing_in_range(
                self.conn, spec.entity, self.connection, page.after, page.upto, present, spec.scope
            )
            self.report.add(self.report.deleted, spec.entity, len(gone))
            if spec.entity == "deals" and gone:
                self._deals_gone(gone)
        if spec.entity == "deals":
            self._owe_comments(records, changed, opened.full)
        opened.advance(page, self.tuning.overlap)
        cursor = opened.cursor()
        set_cursor(self.conn, self.connection, spec.cursor, cursor)
        self.report.cursors[spec.cursor] = cursor

    def _owe_comments(self, records: list[RawRecord], changed: set[str], full: bool) -> None:
        for record in records:
            deal = record.record
            lost = deal.get("STAGE_SEMANTIC_ID") == "F"
            no_comment = not str(deal.get("COMMENTS") or "").strip()
            if lost and no_comment and (full or record.id in changed):
                self.pending.add(record.id)
                self._queue_comments(record.id)

    def _deals_gone(self, deal_ids: list[str]) -> None:
        landed = store.comments_of(self.conn, self.connection, deal_ids)
        gone = [c for ids in landed.values() for c in ids]
        self.report.add(
            self.report.deleted, "timeline_comments", self.landing.mark_deleted("timeline_comments", gone)
        )

    def _land_comments(self, answered: list[tuple[Call, CommandAnswer]]) -> None:
        """The comments of the deals whose last page came in this round, in one go; comments
        landed before that a deal no longer shows are gone."""
        complete: list[str] = []
        for call, answer in answered:
            deal_id = call.tag[1]
            rows = answer.result if isinstance(answer.result, list) else []
            if not isinstance(answer.result, list) and answer.result not in (None, {}):
                what = f"crm.timeline.comment.list for deal {deal_id}: an answer that is not a list"
                self._reject("timeline_comments", [Reject(None, what, answer.result)])
            self.comment_rows.setdefault(deal_id, []).extend(rows)
            if answer.next:
                self._queue_comments(deal_id, answer.next)
            else:
                complete.append(deal_id)
        if not complete:
            return
        records: list[RawRecord] = []
        seen: dict[str, set[str]] = {}
        for deal_id in complete:
            found, rejects = check(
                f"crm.timeline.comment.list (deal {deal_id})",
                self.comment_rows.pop(deal_id),
                upper_id,
                "CREATED",
            )
            self._reject("timeline_comments", rejects)
            records.extend(found)
            seen[deal_id] = {r.id for r in found} | {r.record_id for r in rejects if r.record_id}
        written = self.landing.upsert("timeline_comments", records)
        self.report.add(self.report.records, "timeline_comments", written)
        landed = store.comments_of(self.conn, self.connection, complete)
        gone = sorted(c for deal_id, ids in landed.items() for c in ids - seen.get(deal_id, set()))
        self.report.add(
            self.report.deleted, "timeline_comments", self.landing.mark_deleted("timeline_comments", gone)
        )
        self.pending.difference_update(complete)
        self.queued.difference_update(complete)

    # -- dictionaries ---------------------------------------------------------------------------
    def _land_dictionary(self, call: Call, answer: CommandAnswer) -> None:
        entity = call.tag[0]
        state = self.dictionaries[entity]
        state.outstanding -= 1
        result = answer.result
        if entity == "statuses":
            self.status_rows[call.tag[1]] = result if isinstance(result, list) else []
            return
        if entity == "deal_fields":
            described = result if isinstance(result, dict) else {}
            records = [RawRecord(name, meta) for name, meta in described.items() if isinstance(meta, dict)]
            rejects = [
                Reject(name, f"crm.deal.fields: field {name} is described by a {type(meta).__name__}", meta)
                for name, meta in described.items()
                if not isinstance(meta, dict)
            ]
        elif entity == "categories":
            rows = result.get("categories") if isinstance(result, dict) else result
            records, rejects = check(call.method, rows if isinstance(rows, list) else [], lower_id, None)
        else:  # users
            records, rejects = check(call.method, result if isinstance(result, list) else [], upper_id, None)
        self._reject(entity, rejects)
        self.report.add(self.report.records, entity, self.landing.upsert(entity, records))
        state.ids |= {r.id for r in records} | {r.record_id for r in rejects if r.record_id}
        if answer.next:
            self._call(call.method, {**call.params, "start": answer.next}, entity)
            return
        if state.outstanding == 0:
            self._finish(state)
            if entity == "categories":
                self.categories = set(state.ids)
                for category in sorted(self.categories - self.status_requested, key=int):
                    self._queue_statuses(category)

    def _finish_statuses(self) -> None:
        state = self.dictionaries["statuses"]
        if state.finished or self.categories is None or state.outstanding:
            return
        rows = [
            row for category in sorted(self.categories, key=int) for row in self.status_rows.get(category, [])
        ]
        records, rejects = check("crm.status.list", rows, upper_id, None)
        self._reject("statuses", rejects)
        self.report.add(self.report.records, "statuses", self.landing.upsert("statuses", records))
        state.ids = {r.id for r in records} | {r.record_id for r in rejects if r.record_id}
        self._finish(state)

    def _finish(self, state: Dictionary) -> None:
        self.report.add(self.report.deleted, state.entity, self.landing.reconcile(state.entity, state.ids))
        state.finished = True

    def _reject(self, entity: str, rejects: list[Reject]) -> None:
        fresh = []
        for r in rejects:
            # a row without a readable ID at the end of a page is read again with the next page
            seen = (entity, r.reason, json.dumps(r.payload, sort_keys=True, default=str))
            if seen not in self.rejected:
                self.rejected.add(seen)
                fresh.append(r)
        for r in fresh:
            self.landing.reject(entity, r.record_id, r.reason, r.payload)
        if fresh:
            self.report.add(self.report.rejects, entity, len(fresh))
