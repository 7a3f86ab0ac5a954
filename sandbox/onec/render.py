"""World -> the records a 1C base would serve over its standard OData interface.

Every function takes the world and the connection name and returns the rows of one entity
set as plain JSON values, in the set's key order and property order (see ``schema``).
Dates are rendered without a zone in the base's local time (``Source.timezone``); an empty
date is ``0001-01-01T00:00:00`` and an empty reference the all-zero GUID, as 1C writes them.

Deliberate defects (``Deal.defects``):

- ``onec_empty_refs``: the deal's ``Ответственный_Key`` is the empty reference; the
  responsible user is still on the deal's rows of the stage statistics register.
- ``onec_empty_dates``: the deal's rows of the stage statistics register have an empty
  ``ДатаОкончания`` (and ``Продолжительность`` 0); their ``ДатаНачала`` and the deal's own
  ``ДатаНачала``/``ДатаОкончания`` are kept, so transitions can be rebuilt from start dates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.onec import schema
from sandbox.onec.schema import EMPTY_DATE, EMPTY_REF
from sandbox.world.model import Company, Deal, Manager, Pipeline, Stage, World

Row = dict[str, Any]

DEFECT_EMPTY_REFS = "onec_empty_refs"
DEFECT_EMPTY_DATES = "onec_empty_dates"

STATUS = {"open": "ВРаботе", "won": "Выиграна", "lost": "Проиграна"}
# currency -> (numeric code, short name, full name), as Catalog_Валюты of a Russian base holds them
CURRENCIES: dict[str, tuple[str, str, str]] = {
    "RUB": ("643", "руб.", "Российский рубль"),
    "USD": ("840", "USD", "Доллар США"),
    "EUR": ("978", "EUR", "Евро"),
}
BASE_CURRENCY = "RUB"
# the stage kinds that are 1C process states; won/lost are the deal's Статус, not states
PROCESS_KINDS = ("process", "conditional_refusal")

_NAMESPACE = uuid.UUID("9f0c1c3e-7d0a-4e0c-9a59-0d6c1e5a1c01")


def derived_ref(source_name: str, kind: str, natural_key: str) -> str:
    """A stable GUID for a 1C object the world has no id for (currencies, counterparties)."""
    return str(uuid.uuid5(_NAMESPACE, f"{source_name}|{kind}|{natural_key}"))


def currency_ref(source_name: str, currency: str) -> str:
    return derived_ref(source_name, "currency", currency)


def counterparty_ref(source_name: str, company_id: str) -> str:
    return derived_ref(source_name, "counterparty", company_id)


def email_kind_ref(source_name: str) -> str:
    return derived_ref(source_name, "contact-kind", "EmailПользователя")


def data_version(row: Row) -> str:
    """1C's DataVersion looks like ``AAAAAgAAAAA=``: 8 bytes, base64. Here: of the content."""
    content = json.dumps(
        {k: v for k, v in row.items() if k != "DataVersion"}, ensure_ascii=False, sort_keys=True
    )
    return base64.b64encode(hashlib.sha256(content.encode("utf-8")).digest()[:8]).decode("ascii")


def _number(value: Decimal | float | int) -> int | float:
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() else float(d)


class Renderer:
    """Renders one 1C base (one ``Source`` of the world)."""

    def __init__(self, world: World, source_name: str):
        self.world = world
        self.source_name = source_name
        self.zone = ZoneInfo(world.source(source_name).timezone)
        self.managers: dict[str, Manager] = {m.key: m for m in world.managers}

    # -- value helpers ------------------------------------------------------------------
    def when(self, at: datetime | None) -> str:
        if at is None:
            return EMPTY_DATE
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M:%S")

    def user_ref(self, manager_key: str | None) -> str:
        manager = self.managers.get(manager_key or "")
        return (manager.user_ids.get(self.source_name) if manager else None) or EMPTY_REF

    def _object(self, row: Row, predefined_name: str = "") -> Row:
        row["Predefined"] = bool(predefined_name)
        row["PredefinedDataName"] = predefined_name
        row["DataVersion"] = data_version(row)
        return row

    def _head(self, ref: str, code: str, description: str, deleted: bool = False) -> Row:
        return {
            "Ref_Key": ref,
            "DataVersion": "",
            "DeletionMark": deleted,
            "Parent_Key": EMPTY_REF,
            "IsFolder": False,
            "Code": code,
            "Description": description,
        }

    def pipelines(self) -> list[Pipeline]:
        return [p for p in self.world.pipelines if p.source_name == self.source_name]

    def deals(self) -> list[Deal]:
        return self.world.deals_of(self.source_name)

    def companies(self) -> list[Company]:
        return [c for c in self.world.companies if c.source_name == self.source_name]

    # -- entity sets --------------------------------------------------------------------
    def catalog_deals(self) -> list[Row]:
        stages = {p.id: [s for s in p.stages if s.kind in PROCESS_KINDS] for p in self.pipelines()}
        rows = []
        for deal in self.deals():
            row = self._head(deal.id, deal.number, deal.name, deleted=deal.deleted_at is not None)
            responsible = EMPTY_REF if DEFECT_EMPTY_REFS in deal.defects else self.user_ref(deal.manager_key)
            row.update(
                {
                    "Статус": STATUS[deal.status],
                    "Закрыта": deal.status != "open",
                    "ВидСделки_Key": deal.pipeline_id,
                    "Партнер_Key": deal.company_id or EMPTY_REF,
                    "Ответственный_Key": responsible,
                    "ПричинаПроигрышаСделки_Key": deal.loss_reason_id or EMPTY_REF,
                    "ПотенциальнаяСуммаПродажи": _number(deal.amount),
                    "ВалютаПервичногоСпроса_Key": currency_ref(self.source_name, deal.currency),
                    "ВероятностьУспешногоЗавершения": _probability(deal, stages.get(deal.pipeline_id, [])),
                    "ДатаНачала": self.when(deal.created_at),
                    "ДатаОкончания": self.when(deal.closed_at) if deal.status != "open" else EMPTY_DATE,
                    "Комментарий": "\n".join(c.text for c in deal.comments),
                }
            )
            rows.append(self._object(row))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def catalog_deal_kinds(self) -> list[Row]:
        rows = []
        for i, pipeline in enumerate(self.pipelines(), start=1):
            row = self._head(pipeline.id, f"{i:09d}", pipeline.name)
            process = [s for s in sorted(pipeline.stages, key=lambda s: s.sort) if s.kind in PROCESS_KINDS]
            row["ТипСделки"] = "ТиповаяПродажа"
            row["Комментарий"] = ""
            row["Этапы"] = [
                {"Ref_Key": pipeline.id, "LineNumber": str(n), "Этап_Key": s.id}
                for n, s in enumerate(process, start=1)
            ]
            rows.append(self._object(row))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def catalog_stages(self) -> list[Row]:
        seen: dict[str, Stage] = {}
        for pipeline in self.pipelines():
            for stage in pipeline.stages:
                if stage.kind in PROCESS_KINDS:
                    seen.setdefault(stage.id, stage)
        rows = []
        for i, stage in enumerate(sorted(seen.values(), key=lambda s: s.sort), start=1):
            row = self._head(stage.id, f"{i:09d}", stage.name)
            row["РеквизитДопУпорядочивания"] = stage.sort
            rows.append(self._object(row, stage.predefined_name or ""))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def register_deal_stage_stats(self) -> list[Row]:
        """One row per (deal, stage visited); a re-entered stage overwrites its row."""
        rows: list[Row] = []
        for deal in self.deals():
            by_stage: dict[str, Row] = {}
            moves = sorted(deal.moves, key=lambda m: m.at)
            for n, move in enumerate(moves):
                last = n == len(moves) - 1
                if not last:
                    ended: datetime | None = moves[n + 1].at
                else:
                    ended = deal.closed_at if deal.status != "open" else None
                result = STATUS[deal.status] if last and deal.status != "open" else STATUS["open"]
                if DEFECT_EMPTY_DATES in deal.defects:
                    ended = None
                seconds = int((ended - move.at).total_seconds()) if ended is not None else 0
                by_stage[move.stage_id] = {
                    "Сделка_Key": deal.id,
                    "ЭтапПроцесса_Key": move.stage_id,
                    "ДатаНачала": self.when(move.at),
                    "ДатаОкончания": self.when(ended),
                    "Продолжительность": seconds,
                    "Потенциал": _number(deal.amount),
                    "Результат": result,
                    "Ответственный_Key": self.user_ref(move.manager_key),
                }
            rows.extend(by_stage.values())
        return sorted(rows, key=lambda r: (r["Сделка_Key"], r["ЭтапПроцесса_Key"]))

    def catalog_loss_reasons(self) -> list[Row]:
        reasons = [r for r in self.world.loss_reasons if r.source_name == self.source_name]
        rows = []
        for i, reason in enumerate(reasons, start=1):
            row = self._head(reason.id, f"{i:09d}", reason.name)
            row["Описание"] = ""
            rows.append(self._object(row))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def catalog_partners(self) -> list[Row]:
        rows = []
        for i, company in enumerate(self.companies(), start=1):
            row = self._head(company.id, f"{i:09d}", company.name)
            row.update(
                {
                    "НаименованиеПолное": company.name,
                    "Клиент": True,
                    "ДатаРегистрации": self.when(company.created_at),
                    "Комментарий": "",
                }
            )
            rows.append(self._object(row))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def catalog_counterparties(self) -> list[Row]:
        rows = []
        for i, company in enumerate(self.companies(), start=1):
            row = self._head(counterparty_ref(self.source_name, company.id), f"{i:09d}", company.name)
            person = company.inn_canonical is not None and len(company.inn_canonical) == 12
            row.update(
                {
                    "НаименованиеПолное": company.name,
                    "ИНН": company.inn_rendered or "",
                    "КПП": "",
                    "ЮрФизЛицо": "ИндивидуальныйПредприниматель" if person else "ЮрЛицо",
                    "Партнер_Key": company.id,
                }
            )
            rows.append(self._object(row))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def catalog_users(self) -> list[Row]:
        rows = []
        users = [m for m in self.world.managers if self.source_name in m.user_ids]
        for i, manager in enumerate(users, start=1):
            ref = manager.user_ids[self.source_name]
            email = manager.emails_by_source.get(self.source_name, manager.email)
            row = self._head(ref, f"{i:09d}", manager.name)
            row["Недействителен"] = not manager.active.get(self.source_name, True)
            row["Служебный"] = False
            row["КонтактнаяИнформация"] = [
                {
                    "Ref_Key": ref,
                    "LineNumber": "1",
                    "Тип": "АдресЭлектроннойПочты",
                    "Вид_Key": email_kind_ref(self.source_name),
                    "Представление": email,
                    "АдресЭП": email,
                }
            ]
            rows.append(self._object(row))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def catalog_currencies(self) -> list[Row]:
        rows = []
        for currency, (code, short, full) in CURRENCIES.items():
            row = self._head(currency_ref(self.source_name, currency), code, short)
            row["НаименованиеПолное"] = full
            rows.append(self._object(row))
        return sorted(rows, key=lambda r: r["Ref_Key"])

    def register_exchange_rates(self) -> list[Row]:
        """Daily rates to roubles; the base currency has one record of 1 at the first date."""
        rows = []
        days = [day for (currency, day) in self.world.rates if currency in CURRENCIES]
        if days:
            rows.append(self._rate(BASE_CURRENCY, min(days), Decimal(1)))
        for (currency, day), rate in self.world.rates.items():
            if currency in CURRENCIES and currency != BASE_CURRENCY:
                rows.append(self._rate(currency, day, rate))
        return sorted(rows, key=lambda r: (r["Period"], r["Валюта_Key"]))

    def _rate(self, currency: str, day: date, rate: Decimal) -> Row:
        return {
            "Period": datetime.combine(day, time()).strftime("%Y-%m-%dT%H:%M:%S"),
            "Валюта_Key": currency_ref(self.source_name, currency),
            "Курс": _number(rate),
            "Кратность": 1,
        }


def _probability(deal: Deal, process_stages: list[Stage]) -> int:
    if deal.status == "won":
        return 100
    if deal.status == "lost":
        return 0
    ids = [s.id for s in sorted(process_stages, key=lambda s: s.sort)]
    position = ids.index(deal.stage_id) + 1 if deal.stage_id in ids else 0
    return round(100 * position / (len(ids) + 1))


RENDERERS: dict[str, Callable[[Renderer], list[Row]]] = {
    schema.DEALS.name: Renderer.catalog_deals,
    schema.DEAL_KINDS.name: Renderer.catalog_deal_kinds,
    schema.STAGES.name: Renderer.catalog_stages,
    schema.DEAL_STAGE_STATS.name: Renderer.register_deal_stage_stats,
    schema.LOSS_REASONS.name: Renderer.catalog_loss_reasons,
    schema.PARTNERS.name: Renderer.catalog_partners,
    schema.COUNTERPARTIES.name: Renderer.catalog_counterparties,
    schema.USERS.name: Renderer.catalog_users,
    schema.CURRENCIES.name: Renderer.catalog_currencies,
    schema.EXCHANGE_RATES.name: Renderer.register_exchange_rates,
}


def render(world: World, source_name: str, set_name: str) -> list[Row]:
    """The rows of one entity set, as the base holds them now."""
    return RENDERERS[set_name](Renderer(world, source_name))
