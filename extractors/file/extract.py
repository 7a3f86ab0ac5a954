"""Loading deal exports (CSV/XLSX files) into ``raw_file``.

Every file of the connection's folder (or its one file) is loaded once: its SHA-256 and how it
went are kept in ``raw_file.files``, and a file whose checksum is already there is skipped (a
file rejected as a whole is tried again when the connection's settings change). A file whose
content changed is loaded again. Files go oldest first, each in one transaction: its deals,
its snapshots, its rejected rows and its ``files`` record commit together or not at all.

- ``raw_file.deals``: one row per (connection, deal id); a newer export of the same deal
  replaces it (an older export loaded late does not). The record is the row as a JSON object
  of its columns, the file name, the row number and the file's checksum, with ``values``: the
  mapped cells as read (dates as local ISO text, amounts with a dot, the status word as
  open/won/lost, the currency as its code).
- ``raw_file.stage_snapshots``: a row each time a load sees a deal new or in another stage
  (or pipeline or status) than the last load did, observed at the file's modification time.
  Without a history file, that is all the warehouse knows of the transitions.
- ``raw_file.stage_history``: the rows of the history files, when the connection has them.
- A row that cannot be read is rejected (``ops.rejects``, naming the file, the row and why);
  the rest of its file loads.

Mode ``full`` loads every file again, oldest first. Nothing is ever deleted: an export is not
a complete list of the CRM's deals.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from dwh.config.models import FileSource
from dwh.paths import config_dir
from extractors.common.errors import ExtractError
from extractors.common.landing import RawLanding, RawRecord
from extractors.common.run import Mode, RunReport
from extractors.file.read import FileProblem, Table, decode, export_files, normal, read_table
from extractors.file.values import (
    CellError,
    parse_amount,
    parse_currency,
    parse_date,
    parse_status,
    status_table,
    text_id,
)

SYSTEM = "file"
ENTITIES = ("deals", "stage_history", "stage_snapshots", "files")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass
class Kind:
    """Deal exports or stage history files: where they are and how their columns are named."""

    name: str  # "deals" or "history"
    entity: str  # the raw table of its rows
    path: Path
    columns: dict[str, str]  # meaning -> column name


@dataclass
class Loaded:
    """What one file gave."""

    records: list[RawRecord] = field(default_factory=list)
    rejects: list[tuple[str | None, str, dict[str, Any]]] = field(default_factory=list)
    rows: int = 0


def resolve(path: str) -> Path:
    given = Path(path).expanduser()
    return given if given.is_absolute() else config_dir() / given


class FileExtraction:
    """One run over one file connection."""

    def __init__(self, source: FileSource, conn: psycopg.Connection, mode: Mode, report: RunReport):
        self.source, self.conn, self.mode, self.report = source, conn, mode, report
        self.landing = RawLanding(conn, SYSTEM, source.name)
        self.zone = ZoneInfo(source.timezone)
        self.statuses = status_table(dict(source.status_values))
        self.counts = {"files": 0, "loaded": 0, "unchanged": 0, "rejected": 0, "changing": 0}

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> None:
        for entity in ENTITIES:
            self.landing.ensure(entity)
        kinds = [Kind("deals", "deals", resolve(self.source.path), self.source.columns)]
        if self.source.history_path is not None:
            history = Kind(
                "history", "stage_history", resolve(self.source.history_path), self.source.history_columns
            )
            if history.path.resolve() == kinds[0].path.resolve():
                raise ExtractError(self.source.name, "history_path must be another folder or file than path")
            kinds.append(history)
        for kind in kinds:
            try:
                files = export_files(kind.path)
            except FileNotFoundError:
                key = "path" if kind.name == "deals" else "history_path"
                raise ExtractError(
                    self.source.name,
                    f"{key} {str(kind.path)!r} is neither a folder nor a file: check {key} in sources.yaml",
                ) from None
            for file in files:
                self.counts["files"] += 1
                self.load_file(kind, file)
        self.report.cursors["files"] = dict(self.counts)

    def settings(self, kind: Kind) -> str:
        """What reading a file depends on: a file rejected as a whole is tried again when it changes."""
        s = self.source
        keys = {"columns": kind.columns, "encoding": s.encoding, "delimiter": s.delimiter, "sheet": s.sheet,
                "timezone": s.timezone, "currency": s.currency, "pipeline_name": s.pipeline_name,
                "status_values": s.status_values}  # fmt: skip
        return hashlib.sha256(json.dumps(keys, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def previous(self, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "select record from raw_file.files where connection_name = %s and id = %s",
            (self.source.name, key),
        ).fetchone()
        return row[0] if row else None

    def load_file(self, kind: Kind, file: Path) -> None:
        key = f"{kind.name}:{file.name}"
        try:
            before = file.stat()
            data = file.read_bytes()
            after = file.stat()
        except FileNotFoundError:
            return  # gone since the folder was listed
        steady = (
            (before.st_size, before.st_mtime_ns)
            == (after.st_size, after.st_mtime_ns)
            == (len(data), after.st_mtime_ns)
        )
        if not steady:
            self.counts["changing"] += 1  # still being written: the next run takes it
            return
        checksum = hashlib.sha256(data).hexdigest()
        settings = self.settings(kind)
        previous = self.previous(key)
        same = previous is not None and previous.get("checksum") == checksum
        rejected_again = (
            same and previous.get("status") == "rejected" and previous.get("settings") == settings
        )
        if rejected_again or (same and self.mode != "full" and previous.get("status") != "rejected"):
            self.counts["unchanged"] += 1
            return
        exported_at = datetime.fromtimestamp(after.st_mtime, UTC)
        info: dict[str, Any] = {
            "name": file.name, "kind": kind.name, "checksum": checksum, "size": len(data),
            "modified_at": exported_at.isoformat(), "settings": settings,
        }  # fmt: skip
        try:
            table = read_table(file.name, data, encoding=self.source.encoding, delimiter=self.source.delimiter,
                               sheet=self.source.sheet, key_column=kind.columns["deal_id"],
                               wanted=list(kind.columns.values()))  # fmt: skip
            self.check_columns(kind, table, data)
            if not any(any(c.strip() for c in cells) for _, cells in table.rows):
                raise FileProblem("the file has a header and no rows")
        except FileProblem as exc:
            self.reject_file(key, info, str(exc))
            return
        info.update(encoding=table.encoding, delimiter=table.delimiter, header_row=table.header_row)
        loaded = self.read_rows(kind, table, file.name, checksum, exported_at)
        with self.conn.transaction():
            if kind.name == "deals":
                written = self.land_deals(loaded.records, exported_at, file.name, checksum)
            else:
                written = self.landing.upsert(kind.entity, loaded.records)
            self.add("records", kind.entity, written)
            for record_id, reason, payload in loaded.rejects:
                self.landing.reject(kind.entity, record_id, reason, payload)
            self.add("rejects", kind.entity, len(loaded.rejects))
            info.update(status="loaded", rows=loaded.rows, landed=len(loaded.records), rejected=len(loaded.rejects),
                        notes=table.notes)  # fmt: skip
            self.add("records", "files", self.landing.upsert("files", [RawRecord(key, info, exported_at)]))
        self.counts["loaded"] += 1

    def add(self, bucket: str, entity: str, n: int) -> None:
        if n:
            self.report.add(getattr(self.report, bucket), entity, n)

    def reject_file(self, key: str, info: dict[str, Any], problem: str) -> None:
        with self.conn.transaction():
            self.landing.reject("files", key, f"{info['name']}: {problem}", info)
            self.add("rejects", "files", 1)
            record = {**info, "status": "rejected", "problem": problem}
            self.landing.upsert(
                "files", [RawRecord(key, record, datetime.fromisoformat(info["modified_at"]))]
            )
        self.counts["rejected"] += 1

    # -- columns ----------------------------------------------------------------------------
    def check_columns(self, kind: Kind, table: Table, data: bytes) -> None:
        present = {normal(h) for h in table.header}
        missing = [(m, c) for m, c in kind.columns.items() if normal(c) not in present]
        if not missing:
            return
        names = ", ".join(f"{c!r} (columns.{m})" if kind.name == "deals" else f"{c!r} (history_columns.{m})"
                          for m, c in missing)  # fmt: skip
        header = ", ".join(repr(h) for h in table.header[:30]) or "nothing"
        hint = self.encoding_hint(kind, table, data)
        raise FileProblem(f"the header (row {table.header_row}) has no column {names}; it has {header}{hint}")

    def encoding_hint(self, kind: Kind, table: Table, data: bytes) -> str:
        """When the header matches under the other encoding, say so: the file is not what the connection says."""
        if table.encoding is None or self.source.encoding == "auto":
            return ""
        other = "utf-8" if table.encoding == "cp1251" else "cp1251"
        try:
            text, _ = decode(data, other)
        except FileProblem:
            return ""
        head = normal(" ".join(text.splitlines()[:10]))
        if all(normal(c) in head for c in kind.columns.values()):
            return f". The file is {other} text, the connection says {self.source.encoding}: set encoding: {other} (or auto)"
        return ""

    # -- rows -------------------------------------------------------------------------------
    def read_rows(self, kind: Kind, table: Table, name: str, checksum: str, exported_at: datetime) -> Loaded:
        index = {normal(h): i for i, h in reversed(list(enumerate(table.header)))}
        where = {m: index[normal(c)] for m, c in kind.columns.items()}
        labels = [h or f"column {i + 1}" for i, h in enumerate(table.header)]
        loaded = Loaded()
        first_row: dict[str, int] = {}
        for number, cells in table.rows:
            if not any(c.strip() for c in cells):
                continue  # a blank line
            loaded.rows += 1
            columns = {labels[i]: cells[i] if i < len(cells) else "" for i in range(len(labels))}
            payload = {"file": name, "row_number": number, "columns": columns}
            extra = [c for c in cells[len(labels) :] if c.strip()]
            try:
                if extra:
                    raise CellError(
                        f"the row has {len(labels) + len(extra)} cells, the header {len(labels)} "
                        "(a separator inside a value without quotes?)"
                    )
                cell = {m: (cells[i] if i < len(cells) else "").strip() for m, i in where.items()}
                values = (
                    self.deal_values(cell, kind) if kind.name == "deals" else self.history_values(cell, kind)
                )
                record_id = values["deal_id"] if kind.name == "deals" else values.pop("_id")
                if record_id in first_row:
                    raise CellError(f"{'deal id' if kind.name == 'deals' else 'the same change'} {record_id!r} "
                                    f"repeats row {first_row[record_id]} of this file")  # fmt: skip
            except CellError as exc:
                deal = (cells[where["deal_id"]] if where["deal_id"] < len(cells) else "").strip() or None
                loaded.rejects.append((deal, f"{name}, row {number}: {exc}", payload))
                continue
            first_row[record_id] = number
            record = {**payload, "checksum": checksum, "values": values}
            loaded.records.append(RawRecord(record_id, record, exported_at))
        return loaded

    def column_error(self, kind: Kind, meaning: str, exc: CellError) -> CellError:
        return CellError(f"column {kind.columns[meaning]!r} ({meaning}): {exc}")

    def date(self, kind: Kind, cell: dict[str, str], meaning: str) -> str | None:
        if meaning not in cell:
            return None
        try:
            moment = parse_date(cell[meaning], self.zone)
        except CellError as exc:
            raise self.column_error(kind, meaning, exc) from None
        return moment.strftime(LOCAL_FORMAT) if moment else None

    def deal_values(self, cell: dict[str, str], kind: Kind) -> dict[str, Any]:
        deal_id = text_id(cell["deal_id"])
        if not deal_id:
            raise CellError(f"no deal id in column {kind.columns['deal_id']!r}")
        try:
            amount = parse_amount(cell["amount"]) if "amount" in cell else None
        except CellError as exc:
            raise self.column_error(kind, "amount", exc) from None
        try:
            currency = parse_currency(cell.get("currency", ""), self.source.currency)
        except CellError as exc:
            raise self.column_error(kind, "currency", exc) from None
        try:
            status = parse_status(cell["status"], self.statuses) if "status" in cell else None
        except CellError as exc:
            raise self.column_error(kind, "status", exc) from None

        def text(meaning: str) -> str | None:
            return cell.get(meaning) or None

        return {
            "deal_id": deal_id,
            "deal_name": text("deal_name"),
            "pipeline": text("pipeline") or self.source.pipeline_name,
            "stage": text("stage"),
            "manager": text("manager"),
            "amount": None if amount is None else str(amount),
            "currency": currency,
            "created_at": self.date(kind, cell, "created_at"),
            "closed_at": self.date(kind, cell, "closed_at"),
            "status_raw": text("status"),
            "status": status,
            "loss_reason": text("loss_reason"),
            "comment": text("comment"),
            "customer_name": text("customer_name"),
            "customer_inn": text("customer_inn"),
        }

    def history_values(self, cell: dict[str, str], kind: Kind) -> dict[str, Any]:
        deal_id = text_id(cell["deal_id"])
        if not deal_id:
            raise CellError(f"no deal id in column {kind.columns['deal_id']!r}")
        stage = cell.get("stage") or ""
        if not stage:
            raise CellError(f"no stage in column {kind.columns['stage']!r}")
        changed_at = self.date(kind, cell, "changed_at")
        if changed_at is None:
            raise CellError(f"no date in column {kind.columns['changed_at']!r}")
        return {
            "_id": f"{deal_id}|{changed_at}|{stage}",
            "deal_id": deal_id,
            "stage": stage,
            "changed_at": changed_at,
            "pipeline": cell.get("pipeline") or self.source.pipeline_name,
            "manager": cell.get("manager") or None,
        }

    # -- deals and their snapshots ------------------------------------------------------------
    def land_deals(self, records: list[RawRecord], exported_at: datetime, name: str, checksum: str) -> int:
        """Upsert the deals (unless the landed one comes from a newer export) and append a
        snapshot for every deal new or in another stage than the last load saw."""
        landed = dict.fromkeys([r.id for r in records])
        if records:
            rows = self.conn.execute(
                sql.SQL(
                    "select id, updated_at, record -> 'values' from {} where connection_name = %s and id = any(%s)"
                ).format(sql.Identifier("raw_file", "deals")),
                (self.source.name, [r.id for r in records]),
            ).fetchall()
            landed.update({r[0]: (r[1], r[2]) for r in rows})
        fresh: list[RawRecord] = []
        snapshots: list[RawRecord] = []
        for record in records:
            before = landed.get(record.id)
            values = record.record["values"]
            state = {k: values[k] for k in ("pipeline", "stage", "status")}
            previous = {k: before[1].get(k) for k in state} if before else None
            if previous != state:
                snapshot = {"deal_id": record.id, **state, "observed_at": exported_at.isoformat(), "previous": previous,
                            "file": name, "row_number": record.record["row_number"]}  # fmt: skip
                snapshots.append(RawRecord(f"{record.id}|{checksum[:16]}", snapshot, exported_at))
            if before is None or before[0] is None or before[0] <= exported_at:
                fresh.append(record)
        self.add("records", "stage_snapshots", self.landing.append("stage_snapshots", snapshots))
        return self.landing.upsert("deals", fresh)


def extract(source: FileSource, conn: psycopg.Connection, mode: Mode, report: RunReport) -> None:
    """Load every new or changed export file of one connection (see the module's docstring)."""
    FileExtraction(source, conn, mode, report).run()
