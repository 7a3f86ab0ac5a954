"""World -> the files a sales team exports from its CRM or keeps as a spreadsheet funnel.

``export_rows(world, source_name)`` is the deal export a person would download: one row per
deal not deleted (an export lists what exists), in Russian, the way a Russian Excel writes
it: dates ``dd.mm.yyyy hh:mm:ss``, amounts ``1 234 567,89`` with no-break spaces between
thousands, the currency as ``руб.``, the status as a word. ``history_rows`` is the stage
history export: one row per move. ``write_csv``/``write_xlsx`` write either; ``write_exports``
writes both for a file connection of the world, and ``connection_settings`` is the
sources.yaml entry that reads them.

A file connection has no ids of its own: what a person reads is what identifies a pipeline,
a stage, a manager, a reason or a customer, so a file source of the world names them by
their names (``Stage.id == Stage.name`` and so on); the deal's id is ``Deal.id``.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.world.model import Deal, World

COLUMNS = {  # meaning -> the export's column
    "deal_id": "Номер сделки",
    "deal_name": "Название сделки",
    "pipeline": "Воронка",
    "stage": "Этап",
    "manager": "Ответственный",
    "amount": "Сумма",
    "currency": "Валюта",
    "created_at": "Дата создания",
    "closed_at": "Дата закрытия",
    "status": "Статус",
    "loss_reason": "Причина отказа",
    "comment": "Комментарий",
    "customer_name": "Клиент",
    "customer_inn": "ИНН",
}
HISTORY_COLUMNS = {
    "deal_id": "Номер сделки",
    "stage": "Новый этап",
    "changed_at": "Дата изменения",
    "manager": "Ответственный",
    "pipeline": "Воронка",
}
STATUS_WORDS = {"open": "В работе", "won": "Успешно", "lost": "Закрыта и не реализована"}
CURRENCY_WORDS = {"RUB": "руб.", "USD": "USD", "EUR": "EUR"}
NBSP = "\u00a0"


def russian_amount(amount: Decimal) -> str:
    whole, _, cents = f"{amount:.2f}".partition(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    groups = [digits[max(0, i - 3) : i] for i in range(len(digits), 0, -3)][::-1]
    return f"{sign}{NBSP.join(groups)},{cents}"


class Exporter:
    def __init__(self, world: World, source_name: str):
        self.world, self.source_name = world, source_name
        self.zone = ZoneInfo(world.source(source_name).timezone)
        self.managers = {m.key: m for m in world.managers}
        self.pipelines = {p.id: p for p in world.pipelines if p.source_name == source_name}
        self.reasons = {r.id: r for r in world.loss_reasons if r.source_name == source_name}
        self.companies = {c.id: c for c in world.companies if c.source_name == source_name}

    def when(self, at: datetime | None) -> str:
        return "" if at is None else at.astimezone(self.zone).strftime("%d.%m.%Y %H:%M:%S")

    def manager(self, key: str) -> str:
        manager = self.managers.get(key)
        if manager is None:
            return ""
        return manager.user_ids.get(self.source_name, manager.name)

    def deal(self, d: Deal) -> dict[str, str]:
        pipeline = self.pipelines[d.pipeline_id]
        company = self.companies.get(d.company_id or "")
        reason = self.reasons.get(d.loss_reason_id or "")
        return {
            COLUMNS["deal_id"]: d.id,
            COLUMNS["deal_name"]: d.name,
            COLUMNS["pipeline"]: pipeline.name,
            COLUMNS["stage"]: pipeline.stage(d.stage_id).name,
            COLUMNS["manager"]: self.manager(d.manager_key),
            COLUMNS["amount"]: russian_amount(d.amount),
            COLUMNS["currency"]: CURRENCY_WORDS.get(d.currency, d.currency),
            COLUMNS["created_at"]: self.when(d.created_at),
            COLUMNS["closed_at"]: self.when(d.closed_at),
            COLUMNS["status"]: STATUS_WORDS[d.status],
            COLUMNS["loss_reason"]: reason.name if reason else "",
            COLUMNS["comment"]: "\n".join(c.text for c in sorted(d.comments, key=lambda c: c.at)),
            COLUMNS["customer_name"]: company.name if company else "",
            COLUMNS["customer_inn"]: (company.inn_rendered or "") if company else "",
        }

    def history(self, d: Deal) -> list[dict[str, str]]:
        rows = []
        for move in sorted(d.moves, key=lambda m: m.at):
            pipeline = self.pipelines[move.pipeline_id]
            rows.append({
                HISTORY_COLUMNS["deal_id"]: d.id,
                HISTORY_COLUMNS["stage"]: pipeline.stage(move.stage_id).name,
                HISTORY_COLUMNS["changed_at"]: self.when(move.at),
                HISTORY_COLUMNS["manager"]: self.manager(move.manager_key),
                HISTORY_COLUMNS["pipeline"]: pipeline.name,
            })  # fmt: skip
        return rows

    def deals(self) -> list[Deal]:
        return sorted((d for d in self.world.deals_of(self.source_name) if d.deleted_at is None),
                      key=lambda d: d.created_at)  # fmt: skip


def export_rows(world: World, source_name: str) -> tuple[list[str], list[dict[str, str]]]:
    exporter = Exporter(world, source_name)
    header = list(COLUMNS.values())
    return header, [exporter.deal(d) for d in exporter.deals()]


def history_rows(world: World, source_name: str) -> tuple[list[str], list[dict[str, str]]]:
    exporter = Exporter(world, source_name)
    return list(HISTORY_COLUMNS.values()), [row for d in exporter.deals() for row in exporter.history(d)]


def csv_bytes(
    header: list[str], rows: list[dict[str, str]], encoding: str = "cp1251", delimiter: str = ";"
) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.DictWriter(
        out, header, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]], encoding: str = "cp1251",
              delimiter: str = ";") -> Path:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_bytes(header, rows, encoding, delimiter))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[dict[str, Any]], sheet: str = "Сделки") -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    worksheet.append(header)
    for row in rows:
        worksheet.append([row.get(h, "") for h in header])
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def write_exports(world: World, source_name: str, folder: str | Path) -> dict[str, Path]:
    """The deal export (cp1251, ``;``) under ``<folder>/deals/`` and the stage history under
    ``<folder>/history/``, named and dated (modification time) after the world's clock: a later
    export is another file."""
    root = Path(folder)
    stamp = world.now.astimezone(ZoneInfo(world.source(source_name).timezone)).strftime("%Y%m%d_%H%M")
    header, rows = export_rows(world, source_name)
    history_header, history = history_rows(world, source_name)
    paths = {
        "deals": write_csv(root / "deals" / f"sdelki_{stamp}.csv", header, rows),
        "history": write_csv(root / "history" / f"istoriya_{stamp}.csv", history_header, history),
    }
    for path in paths.values():  # taken at the world's clock: what a load sees as the export's time
        os.utime(path, (world.now.timestamp(), world.now.timestamp()))
    return paths


def connection_settings(folder: str | Path, timezone: str = "Europe/Moscow") -> dict[str, Any]:
    """The sources.yaml entry (without ``name``) that reads what ``write_exports`` wrote into
    ``folder`` (a relative folder stays relative: the connection reads it against the
    configuration folder)."""
    root = Path(folder)
    return {
        "type": "file",
        "path": (root / "deals").as_posix(),
        "history_path": (root / "history").as_posix(),
        "encoding": "cp1251",
        "delimiter": ";",
        "timezone": timezone,
        "columns": dict(COLUMNS),
        "history_columns": dict(HISTORY_COLUMNS),
    }
