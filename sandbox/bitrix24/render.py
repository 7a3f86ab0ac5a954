"""The sales world as one Bitrix24 portal shows it through REST.

``Portal(world, source_name)`` turns the source's part of the ``World`` into the records the
methods serve: deals, stage history, funnels (categories) and their stages (statuses), the
deal field descriptions, users, timeline comments, companies, contacts and requisites.
Values follow the API: strings (``"ID":"37"``, ``"OPPORTUNITY":"19999.99"``, ``"Y"``/``"N"``),
``null`` where the portal has nothing, instants in the portal's zone (``+03:00``); stage
history alone carries integers. Deleted deals are simply absent.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from sandbox.bitrix24.query import PORTAL_TZ, FieldType
from sandbox.world.model import Comment, Company, Contact, Deal, Manager, Pipeline, Stage, World

LOSS_REASON_FIELD = "UF_CRM_LOSS_REASON"
DEAL_TYPES = ["SALE", "COMPLEX", "GOODS", "SERVICES"]
DEAL_SOURCES = ["CALL", "WEB", "EMAIL", "ADVERTISING", "RECOMMENDATION", "TRADE_SHOW"]


# -- formatting ------------------------------------------------------------------------------
def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def instant(moment: datetime | None) -> str | None:
    """``2024-09-02T18:37:18+03:00``: the portal writes every instant in its own zone."""
    if moment is None:
        return None
    return _aware(moment).astimezone(PORTAL_TZ).isoformat(timespec="seconds")


def day(moment: datetime | date | None) -> str | None:
    """A date field (BEGINDATE, CLOSEDATE): midnight of the portal's day, with the offset."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        moment = _aware(moment).astimezone(PORTAL_TZ).date()
    return datetime.combine(moment, time(), tzinfo=PORTAL_TZ).isoformat(timespec="seconds")


def money(amount: Decimal) -> str:
    return f"{Decimal(amount).quantize(Decimal('0.01'))}"


def stable_int(*parts: object) -> int:
    """A deterministic number from ``parts`` (Python's hash() is salted per process)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def yn(flag: bool) -> str:
    return "Y" if flag else "N"


# -- field types (what filters and order compare) ----------------------------------------------
DEAL_TYPES_BY_FIELD: dict[str, FieldType] = {
    "ID": "int",
    "TITLE": "str",
    "TYPE_ID": "str",
    "STAGE_ID": "str",
    "PROBABILITY": "int",
    "CURRENCY_ID": "str",
    "OPPORTUNITY": "float",
    "IS_MANUAL_OPPORTUNITY": "str",
    "TAX_VALUE": "float",
    "LEAD_ID": "int",
    "COMPANY_ID": "int",
    "CONTACT_ID": "int",
    "QUOTE_ID": "int",
    "BEGINDATE": "date",
    "CLOSEDATE": "date",
    "ASSIGNED_BY_ID": "int",
    "CREATED_BY_ID": "int",
    "MODIFY_BY_ID": "int",
    "DATE_CREATE": "datetime",
    "DATE_MODIFY": "datetime",
    "OPENED": "str",
    "CLOSED": "str",
    "COMMENTS": "str",
    "ADDITIONAL_INFO": "str",
    "LOCATION_ID": "str",
    "CATEGORY_ID": "int",
    "STAGE_SEMANTIC_ID": "str",
    "IS_NEW": "str",
    "IS_RECURRING": "str",
    "IS_RETURN_CUSTOMER": "str",
    "IS_REPEATED_APPROACH": "str",
    "SOURCE_ID": "str",
    "SOURCE_DESCRIPTION": "str",
    "ORIGINATOR_ID": "str",
    "ORIGIN_ID": "str",
    "MOVED_BY_ID": "int",
    "MOVED_TIME": "datetime",
    "LAST_ACTIVITY_TIME": "datetime",
    "UTM_SOURCE": "str",
    "UTM_MEDIUM": "str",
    "UTM_CAMPAIGN": "str",
    "UTM_CONTENT": "str",
    "UTM_TERM": "str",
    "LAST_ACTIVITY_BY": "int",
    LOSS_REASON_FIELD: "int",
}
DEAL_STANDARD_FIELDS = [f for f in DEAL_TYPES_BY_FIELD if not f.startswith("UF_")]
DEAL_CUSTOM_FIELDS = [LOSS_REASON_FIELD]

STAGE_HISTORY_TYPES: dict[str, FieldType] = {
    "ID": "int",
    "TYPE_ID": "int",
    "OWNER_ID": "int",
    "CREATED_TIME": "datetime",
    "CATEGORY_ID": "int",
    "STAGE_SEMANTIC_ID": "str",
    "STAGE_ID": "str",
}

COMPANY_TYPES_BY_FIELD: dict[str, FieldType] = {
    "ID": "int",
    "TITLE": "str",
    "COMPANY_TYPE": "str",
    "INDUSTRY": "str",
    "EMPLOYEES": "str",
    "CURRENCY_ID": "str",
    "REVENUE": "float",
    "OPENED": "str",
    "COMMENTS": "str",
    "HAS_PHONE": "str",
    "HAS_EMAIL": "str",
    "HAS_IMOL": "str",
    "IS_MY_COMPANY": "str",
    "ASSIGNED_BY_ID": "int",
    "CREATED_BY_ID": "int",
    "MODIFY_BY_ID": "int",
    "DATE_CREATE": "datetime",
    "DATE_MODIFY": "datetime",
    "LEAD_ID": "int",
    "ORIGINATOR_ID": "str",
    "ORIGIN_ID": "str",
    "ADDRESS": "str",
    "LAST_ACTIVITY_TIME": "datetime",
    "LAST_ACTIVITY_BY": "int",
}

CONTACT_TYPES_BY_FIELD: dict[str, FieldType] = {
    "ID": "int",
    "HONORIFIC": "str",
    "NAME": "str",
    "SECOND_NAME": "str",
    "LAST_NAME": "str",
    "POST": "str",
    "TYPE_ID": "str",
    "SOURCE_ID": "str",
    "COMPANY_ID": "int",
    "OPENED": "str",
    "EXPORT": "str",
    "HAS_PHONE": "str",
    "HAS_EMAIL": "str",
    "HAS_IMOL": "str",
    "ASSIGNED_BY_ID": "int",
    "CREATED_BY_ID": "int",
    "MODIFY_BY_ID": "int",
    "DATE_CREATE": "datetime",
    "DATE_MODIFY": "datetime",
    "LEAD_ID": "int",
    "ORIGINATOR_ID": "str",
    "ORIGIN_ID": "str",
    "COMMENTS": "str",
    "LAST_ACTIVITY_TIME": "datetime",
    "LAST_ACTIVITY_BY": "int",
    # multiple fields: filtered by exact value only, selected only by name
    "PHONE": "str",
    "EMAIL": "str",
}
CONTACT_MULTIPLE_FIELDS = ["PHONE", "EMAIL"]

REQUISITE_TYPES_BY_FIELD: dict[str, FieldType] = {
    "ID": "int",
    "ENTITY_TYPE_ID": "int",
    "ENTITY_ID": "int",
    "PRESET_ID": "int",
    "DATE_CREATE": "datetime",
    "DATE_MODIFY": "datetime",
    "CREATED_BY_ID": "int",
    "MODIFY_BY_ID": "int",
    "NAME": "str",
    "CODE": "str",
    "XML_ID": "str",
    "ORIGINATOR_ID": "str",
    "ACTIVE": "str",
    "ADDRESS_ONLY": "str",
    "SORT": "int",
    "RQ_COMPANY_NAME": "str",
    "RQ_COMPANY_FULL_NAME": "str",
    "RQ_DIRECTOR": "str",
    "RQ_INN": "str",
    "RQ_KPP": "str",
    "RQ_OGRN": "str",
    "RQ_OKPO": "str",
}

USER_TYPES_BY_FIELD: dict[str, FieldType] = {
    "ID": "int",
    "ACTIVE": "str",
    "NAME": "str",
    "LAST_NAME": "str",
    "SECOND_NAME": "str",
    "EMAIL": "str",
    "LAST_LOGIN": "datetime",
    "DATE_REGISTER": "datetime",
    "IS_ONLINE": "str",
    "WORK_POSITION": "str",
    "UF_DEPARTMENT": "int",
    "USER_TYPE": "str",
}

STATUS_TYPES_BY_FIELD: dict[str, FieldType] = {
    "ID": "int",
    "ENTITY_ID": "str",
    "STATUS_ID": "str",
    "NAME": "str",
    "NAME_INIT": "str",
    "SORT": "int",
    "SYSTEM": "str",
    "CATEGORY_ID": "int",
    "COLOR": "str",
    "SEMANTICS": "str",
}

TIMELINE_COMMENT_TYPES: dict[str, FieldType] = {
    "ID": "int",
    "ENTITY_ID": "int",
    "ENTITY_TYPE": "str",
    "CREATED": "datetime",
    "COMMENT": "str",
    "AUTHOR_ID": "int",
}


def stage_semantic(stage: Stage) -> str:
    """P/S/F of a stage. A conditional refusal is still in progress: the deal is not lost
    until the head of sales closes it."""
    return {"won": "S", "lost": "F"}.get(stage.kind, "P")


def status_entity_id(category_id: str) -> str:
    return "DEAL_STAGE" if str(category_id) == "0" else f"DEAL_STAGE_{category_id}"


def comment_in_timeline(world: World, deal: Deal) -> bool:
    """Where this deal's manager wrote the comment: the deal's COMMENTS field or a timeline
    comment. The world may say so (defect markers ``comment_in_timeline`` /
    ``comment_in_field``); otherwise a fixed third of the deals use the timeline."""
    if "comment_in_timeline" in deal.defects:
        return True
    if "comment_in_field" in deal.defects:
        return False
    return stable_int(world.seed, deal.source_name, deal.id, "timeline") % 3 == 0


def requisite_count(world: World, company: Company) -> int:
    """0 without an INN, else 1; one company in six keeps a second (branch) requisite."""
    if company.inn_rendered is None:
        return 0
    return 2 if stable_int(world.seed, company.source_name, company.id, "requisites") % 6 == 0 else 1


class _Renderer:
    def __init__(self, world: World, source_name: str):
        self.world = world
        self.source = source_name
        self.now = _aware(world.now)
        self.managers: dict[str, Manager] = {m.key: m for m in world.managers}
        self.pipelines: dict[str, Pipeline] = {
            p.id: p for p in world.pipelines if p.source_name == source_name
        }
        self.all_deals = [d for d in world.deals if d.source_name == source_name]
        self.visible_deals = [
            d
            for d in self.all_deals
            if _aware(d.created_at) <= self.now and (d.deleted_at is None or _aware(d.deleted_at) > self.now)
        ]
        self.visible_deals.sort(key=lambda d: int(d.id))
        self.companies = sorted(
            (c for c in world.companies if c.source_name == source_name and _aware(c.created_at) <= self.now),
            key=lambda c: int(c.id),
        )
        self.company_by_id = {c.id: c for c in self.companies}
        self.contacts = sorted(
            (c for c in world.contacts if c.source_name == source_name), key=lambda c: int(c.id)
        )
        self.reason_ids = {r.id for r in world.loss_reasons if r.source_name == source_name}

    # -- people -------------------------------------------------------------------------------
    def user_id(self, manager_key: str | None) -> str | None:
        if manager_key is None:
            return None
        manager = self.managers.get(manager_key)
        if manager is None or self.source not in manager.user_ids:
            raise KeyError(f"{self.source}: manager {manager_key!r} has no user in this portal")
        return manager.user_ids[self.source]

    def users(self) -> list[dict[str, Any]]:
        first_deal: dict[str, datetime] = {}
        for d in self.all_deals:
            created = _aware(d.created_at)
            first_deal[d.manager_key] = min(first_deal.get(d.manager_key, created), created)
        rows = []
        for m in self.world.managers:
            uid = m.user_ids.get(self.source)
            if uid is None:
                continue
            last, _, first = m.name.partition(" ")
            first, _, second = first.partition(" ")
            earliest = min(first_deal.values(), default=self.now)
            registered = first_deal.get(m.key, earliest) - timedelta(days=30)
            active = m.active.get(self.source, True)
            rows.append(
                {
                    "ID": uid,
                    "ACTIVE": active,
                    "NAME": first,
                    "LAST_NAME": last,
                    "SECOND_NAME": second,
                    "EMAIL": m.emails_by_source.get(self.source, m.email),
                    "LAST_LOGIN": instant(self.now - timedelta(hours=stable_int(m.key) % 72))
                    if active
                    else None,
                    "DATE_REGISTER": instant(registered),
                    "TIME_ZONE": "",
                    "IS_ONLINE": "N",
                    "PERSONAL_GENDER": "",
                    "PERSONAL_BIRTHDAY": "",
                    "WORK_POSITION": "Менеджер по продажам" if m.strengths else "Руководитель отдела продаж",
                    "UF_EMPLOYMENT_DATE": "",
                    "UF_DEPARTMENT": [1],
                    "USER_TYPE": "employee",
                }
            )
        rows.sort(key=lambda r: int(r["ID"]))
        return rows

    # -- funnels ------------------------------------------------------------------------------
    def categories(self) -> list[dict[str, Any]]:
        rows = []
        for p in self.pipelines.values():
            row: dict[str, Any] = {
                "id": int(p.id),
                "name": p.name,
                "sort": p.sort,
                "entityTypeId": 2,
                "isDefault": yn(p.id == "0"),
            }
            if p.id != "0":
                row["originId"] = ""
                row["originatorId"] = ""
            rows.append(row)
        rows.sort(key=lambda r: (r["sort"], r["id"]))
        return rows

    def statuses(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        next_id = 100
        colors = {"process": "#39A8EF", "success": "#7BD500", "failure": "#FF5752", "apology": "#FF5752"}
        for p in sorted(self.pipelines.values(), key=lambda p: int(p.id)):
            for s in sorted(p.stages, key=lambda s: s.sort):
                next_id += 1
                semantic = stage_semantic(s)
                if semantic == "S":
                    extra = "success"
                elif semantic == "F":
                    extra = "apology" if s.id.split(":")[-1] == "APOLOGY" else "failure"
                else:
                    extra = "process"
                system = s.id.split(":")[-1] in ("NEW", "WON", "LOSE")
                rows.append(
                    {
                        "ID": str(next_id),
                        "ENTITY_ID": status_entity_id(p.id),
                        "STATUS_ID": s.id,
                        "NAME": s.name,
                        "NAME_INIT": s.name if system else "",
                        "SORT": str(s.sort),
                        "SYSTEM": yn(system),
                        "CATEGORY_ID": None if p.id == "0" else p.id,
                        "COLOR": colors[extra],
                        "SEMANTICS": None if semantic == "P" else semantic,
                        "EXTRA": {"SEMANTICS": extra, "COLOR": colors[extra]},
                    }
                )
        for entity, items in (
            (
                "DEAL_TYPE",
                [
                    ("SALE", "Продажа"),
                    ("COMPLEX", "Комплексная продажа"),
                    ("GOODS", "Продажа товара"),
                    ("SERVICES", "Продажа услуги"),
                ],
            ),
            (
                "SOURCE",
                [
                    ("CALL", "Звонок"),
                    ("WEB", "Веб-сайт"),
                    ("EMAIL", "Электронная почта"),
                    ("ADVERTISING", "Реклама"),
                    ("RECOMMENDATION", "По рекомендации"),
                    ("TRADE_SHOW", "Выставка"),
                ],
            ),
        ):
            for sort, (status_id, name) in enumerate(items, start=1):
                next_id += 1
                rows.append(
                    {
                        "ID": str(next_id),
                        "ENTITY_ID": entity,
                        "STATUS_ID": status_id,
                        "NAME": name,
                        "NAME_INIT": name,
                        "SORT": str(sort * 10),
                        "SYSTEM": "Y",
                        "CATEGORY_ID": None,
                        "COLOR": None,
                        "SEMANTICS": None,
                    }
                )
        return rows

    def deal_fields(self) -> dict[str, dict[str, Any]]:
        described: dict[str, tuple[str, str, bool]] = {
            # field -> (type, title, read only)
            "ID": ("integer", "ID", True),
            "TITLE": ("string", "Название", False),
            "TYPE_ID": ("crm_status", "Тип", False),
            "CATEGORY_ID": ("crm_category", "Направление", False),
            "STAGE_ID": ("crm_status", "Стадия сделки", False),
            "STAGE_SEMANTIC_ID": ("string", "Группа стадии", True),
            "IS_NEW": ("char", "Новая сделка", True),
            "IS_RECURRING": ("char", "Регулярная сделка", False),
            "IS_RETURN_CUSTOMER": ("char", "Повторная сделка", False),
            "IS_REPEATED_APPROACH": ("char", "Повторное обращение", False),
            "PROBABILITY": ("integer", "Вероятность", False),
            "CURRENCY_ID": ("crm_currency", "Валюта", False),
            "OPPORTUNITY": ("double", "Сумма", False),
            "IS_MANUAL_OPPORTUNITY": ("char", "IS_MANUAL_OPPORTUNITY", False),
            "TAX_VALUE": ("double", "Ставка налога", False),
            "COMPANY_ID": ("crm_company", "Компания", False),
            "CONTACT_ID": ("crm_contact", "Контакт", False),
            "QUOTE_ID": ("crm_quote", "Предложение", True),
            "BEGINDATE": ("date", "Дата начала", False),
            "CLOSEDATE": ("date", "Дата завершения", False),
            "OPENED": ("char", "Доступна для всех", False),
            "CLOSED": ("char", "Закрыта", False),
            "COMMENTS": ("string", "Комментарий", False),
            "ASSIGNED_BY_ID": ("user", "Ответственный", False),
            "CREATED_BY_ID": ("user", "Кем создана", True),
            "MODIFY_BY_ID": ("user", "Кем изменена", True),
            "MOVED_BY_ID": ("user", "MOVED_BY_ID", True),
            "DATE_CREATE": ("datetime", "Дата создания", True),
            "DATE_MODIFY": ("datetime", "Дата изменения", True),
            "MOVED_TIME": ("datetime", "MOVED_TIME", True),
            "SOURCE_ID": ("crm_status", "Источник", False),
            "SOURCE_DESCRIPTION": ("string", "Дополнительно об источнике", False),
            "LEAD_ID": ("crm_lead", "Лид", True),
            "ADDITIONAL_INFO": ("string", "Дополнительная информация", False),
            "LOCATION_ID": ("location", "Местоположение", False),
            "ORIGINATOR_ID": ("string", "Внешний источник", False),
            "ORIGIN_ID": ("string", "Идентификатор элемента во внешнем источнике", False),
            "UTM_SOURCE": ("string", "Рекламная система", False),
            "UTM_MEDIUM": ("string", "Тип трафика", False),
            "UTM_CAMPAIGN": ("string", "Обозначение рекламной кампании", False),
            "UTM_CONTENT": ("string", "Содержание кампании", False),
            "UTM_TERM": ("string", "Условие поиска кампании", False),
            "LAST_ACTIVITY_TIME": ("datetime", "LAST_ACTIVITY_TIME", True),
            "LAST_ACTIVITY_BY": ("user", "LAST_ACTIVITY_BY", True),
        }
        fields: dict[str, dict[str, Any]] = {}
        for name, (kind, title, read_only) in described.items():
            fields[name] = {
                "type": kind,
                "isRequired": False,
                "isReadOnly": read_only,
                "isImmutable": name == "CATEGORY_ID",
                "isMultiple": False,
                "isDynamic": False,
                "title": title,
            }
            if name in ("TYPE_ID", "STAGE_ID", "SOURCE_ID"):
                fields[name]["statusType"] = {
                    "TYPE_ID": "DEAL_TYPE",
                    "STAGE_ID": "DEAL_STAGE",
                    "SOURCE_ID": "SOURCE",
                }[name]
        reasons = [
            r
            for r in self.world.loss_reasons
            if r.source_name == self.source and (r.created_at is None or _aware(r.created_at) <= self.now)
        ]
        reasons.sort(key=lambda r: int(r.id) if r.id.isdigit() else r.id)
        label = "Причина проигрыша"
        fields[LOSS_REASON_FIELD] = {
            "type": "enumeration",
            "isRequired": False,
            "isReadOnly": False,
            "isImmutable": False,
            "isMultiple": False,
            "isDynamic": True,
            "items": [{"ID": r.id, "VALUE": r.name} for r in reasons],
            "title": LOSS_REASON_FIELD,
            "listLabel": label,
            "formLabel": label,
            "filterLabel": label,
            "settings": {"DISPLAY": "LIST", "LIST_HEIGHT": 1, "CAPTION_NO_VALUE": "", "SHOW_NO_VALUE": "Y"},
        }
        return fields

    # -- deals --------------------------------------------------------------------------------
    def stage(self, pipeline_id: str, stage_id: str) -> Stage:
        pipeline = self.pipelines.get(pipeline_id)
        if pipeline is None:
            raise KeyError(f"{self.source}: no funnel (category) {pipeline_id!r}")
        return pipeline.stage(stage_id)

    def deal(self, d: Deal, returning: bool) -> dict[str, Any]:
        stage = self.stage(d.pipeline_id, d.stage_id)
        semantic = stage_semantic(stage)
        pipeline = self.pipelines[d.pipeline_id]
        first_stage = min(pipeline.stages, key=lambda s: s.sort)
        moves = sorted(d.moves, key=lambda m: _aware(m.at))
        first, last = (moves[0], moves[-1]) if moves else (None, None)
        assigned = self.user_id(d.manager_key)
        created_by = self.user_id(first.by_user_key or first.manager_key) if first else assigned
        moved_by = self.user_id(last.by_user_key or last.manager_key) if last else assigned
        in_timeline = comment_in_timeline(self.world, d)
        comments = self._sorted_comments(d)
        # the deal's COMMENTS field holds the latest comment (the one on the loss)
        field_comment = None if in_timeline or not comments else comments[-1].text
        reason = None
        if d.loss_reason_id in self.reason_ids and stage.reason_name is None:
            reason = d.loss_reason_id
        closed = semantic in ("S", "F")
        if d.closed_at is not None:
            close_date: datetime | date = d.closed_at
        else:
            close_date = _aware(d.created_at) + timedelta(days=7)
        last_activity = max(
            [_aware(d.updated_at)] + [_aware(c.at) for c in d.comments if _aware(c.at) <= self.now]
        )
        pick = stable_int(self.world.seed, self.source, d.id)
        return {
            "ID": d.id,
            "TITLE": d.name,
            "TYPE_ID": DEAL_TYPES[pick % len(DEAL_TYPES)],
            "STAGE_ID": d.stage_id,
            "PROBABILITY": None,
            "CURRENCY_ID": d.currency,
            "OPPORTUNITY": money(d.amount),
            "IS_MANUAL_OPPORTUNITY": "N",
            "TAX_VALUE": "0.00",
            "LEAD_ID": None,
            # the portal writes "0" for a deal without a company, null for one without contact
            "COMPANY_ID": d.company_id if d.company_id else "0",
            "CONTACT_ID": d.contact_ids[0] if d.contact_ids else None,
            "QUOTE_ID": None,
            "BEGINDATE": day(d.created_at),
            "CLOSEDATE": day(close_date),
            "ASSIGNED_BY_ID": assigned,
            "CREATED_BY_ID": created_by,
            "MODIFY_BY_ID": moved_by,
            "DATE_CREATE": instant(d.created_at),
            "DATE_MODIFY": instant(d.updated_at),
            "OPENED": "Y",
            "CLOSED": yn(closed),
            "COMMENTS": field_comment,
            "ADDITIONAL_INFO": None,
            "LOCATION_ID": None,
            "CATEGORY_ID": d.pipeline_id,
            "STAGE_SEMANTIC_ID": semantic,
            "IS_NEW": yn(d.stage_id == first_stage.id),
            "IS_RECURRING": "N",
            "IS_RETURN_CUSTOMER": yn(returning),
            "IS_REPEATED_APPROACH": "N",
            "SOURCE_ID": DEAL_SOURCES[(pick >> 8) % len(DEAL_SOURCES)],
            "SOURCE_DESCRIPTION": None,
            "ORIGINATOR_ID": None,
            "ORIGIN_ID": None,
            "MOVED_BY_ID": moved_by,
            "MOVED_TIME": instant(last.at) if last else instant(d.created_at),
            "LAST_ACTIVITY_TIME": instant(last_activity),
            "UTM_SOURCE": None,
            "UTM_MEDIUM": None,
            "UTM_CAMPAIGN": None,
            "UTM_CONTENT": None,
            "UTM_TERM": None,
            "LAST_ACTIVITY_BY": assigned,
            LOSS_REASON_FIELD: reason,
        }

    def _sorted_comments(self, d: Deal) -> list[Comment]:
        shown = [(i, c) for i, c in enumerate(d.comments) if _aware(c.at) <= self.now]
        return [c for _, c in sorted(shown, key=lambda ic: (_aware(ic[1].at), ic[0]))]

    def deals(self) -> list[dict[str, Any]]:
        seen_companies: set[str] = set()
        rows = []
        for d in sorted(self.visible_deals, key=lambda d: (_aware(d.created_at), int(d.id))):
            returning = bool(d.company_id) and d.company_id in seen_companies
            if d.company_id:
                seen_companies.add(d.company_id)
            rows.append(self.deal(d, returning))
        rows.sort(key=lambda r: int(r["ID"]))
        return rows

    def stage_history(self) -> list[dict[str, Any]]:
        """One row per move; ids numbered over every deal ever made (deleted ones too) in
        time order, so they stay put as the world advances and rows of deleted deals go."""
        entries = []
        for d in self.all_deals:
            moves = sorted(d.moves, key=lambda m: _aware(m.at))
            previous_pipeline = None
            for index, move in enumerate(moves):
                entries.append((_aware(move.at), int(d.id), index, d, move, previous_pipeline))
                previous_pipeline = move.pipeline_id
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        visible = {d.id for d in self.visible_deals}
        rows = []
        for number, (at, owner, index, d, move, previous_pipeline) in enumerate(entries, start=1):
            if d.id not in visible or at > self.now:
                continue
            stage = self.stage(move.pipeline_id, move.stage_id)
            semantic = stage_semantic(stage)
            if index == 0:
                type_id = 1
            elif previous_pipeline is not None and move.pipeline_id != previous_pipeline:
                type_id = 5
            elif semantic in ("S", "F"):
                type_id = 3
            else:
                type_id = 2
            rows.append(
                {
                    "ID": number,
                    "TYPE_ID": type_id,
                    "OWNER_ID": owner,
                    "CREATED_TIME": instant(at),
                    "CATEGORY_ID": int(move.pipeline_id),
                    "STAGE_SEMANTIC_ID": semantic,
                    "STAGE_ID": move.stage_id,
                }
            )
        return rows

    def timeline_comments(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for d in self.visible_deals:
            comments = self._sorted_comments(d)
            if not comments:
                continue
            in_timeline = comment_in_timeline(self.world, d)
            shown = comments if in_timeline else comments[:-1]
            rows = []
            for c in shown:
                cid = c.id if c.id.isdigit() else str(stable_int(self.source, d.id, c.id) % 900_000 + 100_000)
                rows.append(
                    {
                        "ID": cid,
                        "ENTITY_ID": d.id,
                        "ENTITY_TYPE": "deal",
                        "CREATED": instant(c.at),
                        "COMMENT": c.text,
                        "AUTHOR_ID": self.user_id(c.author_key),
                    }
                )
            if rows:
                out[d.id] = rows
        return out

    # -- customers ----------------------------------------------------------------------------
    def _company_owner(self) -> dict[str, str]:
        owner: dict[str, str] = {}
        for d in sorted(self.all_deals, key=lambda d: (_aware(d.created_at), int(d.id))):
            if d.company_id and d.company_id not in owner:
                owner[d.company_id] = self.user_id(d.manager_key) or ""
        return owner

    def _fallback_user(self) -> str:
        ids = sorted(
            (m.user_ids[self.source] for m in self.world.managers if self.source in m.user_ids), key=int
        )
        if not ids:
            raise KeyError(f"{self.source}: the portal has no users")
        return ids[0]

    def companies_rows(self) -> list[dict[str, Any]]:
        owner = self._company_owner()
        fallback = self._fallback_user()
        rows = []
        for c in self.companies:
            assigned = owner.get(c.id) or fallback
            rows.append(
                {
                    "ID": c.id,
                    "TITLE": c.name,
                    "COMPANY_TYPE": "CUSTOMER",
                    "LOGO": None,
                    "LEAD_ID": None,
                    "HAS_PHONE": "N",
                    "HAS_EMAIL": "N",
                    "HAS_IMOL": "N",
                    "ASSIGNED_BY_ID": assigned,
                    "CREATED_BY_ID": assigned,
                    "MODIFY_BY_ID": assigned,
                    "BANKING_DETAILS": None,
                    "INDUSTRY": "OTHER",
                    "REVENUE": "0.00",
                    "CURRENCY_ID": "RUB",
                    "EMPLOYEES": "EMPLOYEES_1",
                    "COMMENTS": None,
                    "DATE_CREATE": instant(c.created_at),
                    "DATE_MODIFY": instant(c.updated_at),
                    "OPENED": "Y",
                    "IS_MY_COMPANY": "N",
                    "ORIGINATOR_ID": None,
                    "ORIGIN_ID": None,
                    "ORIGIN_VERSION": None,
                    "ADDRESS": None,
                    "LAST_ACTIVITY_TIME": instant(c.updated_at),
                    "LAST_ACTIVITY_BY": assigned,
                }
            )
        return rows

    @cached_property
    def _first_deal_of_contact(self) -> dict[str, datetime]:
        """contact id -> when the first of its deals was created (one pass over the deals)."""
        first: dict[str, datetime] = {}
        for deal in self.all_deals:
            created = _aware(deal.created_at)
            for contact_id in deal.contact_ids:
                if contact_id not in first or created < first[contact_id]:
                    first[contact_id] = created
        return first

    def _contact_dates(self, contact: Contact) -> tuple[datetime, datetime]:
        created = getattr(contact, "created_at", None)
        updated = getattr(contact, "updated_at", None)
        if created is None:
            first = self._first_deal_of_contact.get(contact.id)
            candidates = [first] if first is not None else []
            company = self.company_by_id.get(contact.company_id or "")
            if company is not None:
                candidates.append(_aware(company.created_at))
            created = min(candidates) if candidates else self.now
        return _aware(created), _aware(updated or created)

    def contacts_rows(self) -> list[dict[str, Any]]:
        fallback = self._fallback_user()
        owner = self._company_owner()
        rows = []
        for c in self.contacts:
            created, updated = self._contact_dates(c)
            if created > self.now:
                continue
            last, _, first = c.name.partition(" ")
            first, _, second = first.partition(" ")
            assigned = owner.get(c.company_id or "") or fallback
            row: dict[str, Any] = {
                "ID": c.id,
                "HONORIFIC": None,
                "NAME": first,
                "SECOND_NAME": second,
                "LAST_NAME": last,
                "PHOTO": None,
                "BIRTHDATE": "",
                "TYPE_ID": "CLIENT",
                "SOURCE_ID": "CALL",
                "SOURCE_DESCRIPTION": None,
                "POST": None,
                "ADDRESS": None,
                "COMMENTS": None,
                "OPENED": "Y",
                "EXPORT": "Y",
                "HAS_PHONE": yn(bool(c.phone)),
                "HAS_EMAIL": yn(bool(c.email)),
                "HAS_IMOL": "N",
                "ASSIGNED_BY_ID": assigned,
                "CREATED_BY_ID": assigned,
                "MODIFY_BY_ID": assigned,
                "DATE_CREATE": instant(created),
                "DATE_MODIFY": instant(updated),
                "COMPANY_ID": c.company_id,
                "LEAD_ID": None,
                "ORIGINATOR_ID": None,
                "ORIGIN_ID": None,
                "ORIGIN_VERSION": None,
                "LAST_ACTIVITY_TIME": instant(updated),
                "LAST_ACTIVITY_BY": assigned,
                "PHONE": [],
                "EMAIL": [],
            }
            base = int(c.id) * 10
            if c.phone:
                row["PHONE"] = [
                    {"ID": str(base + 1), "VALUE_TYPE": "WORK", "VALUE": c.phone, "TYPE_ID": "PHONE"}
                ]
            if c.email:
                row["EMAIL"] = [
                    {"ID": str(base + 2), "VALUE_TYPE": "WORK", "VALUE": c.email, "TYPE_ID": "EMAIL"}
                ]
            rows.append(row)
        return rows

    def requisites_rows(self) -> list[dict[str, Any]]:
        owner = self._company_owner()
        fallback = self._fallback_user()
        rows = []
        for c in self.companies:
            count = requisite_count(self.world, c)
            digits = "".join(ch for ch in (c.inn_canonical or c.inn_rendered or "") if ch.isdigit())
            for k in range(1, count + 1):
                assigned = owner.get(c.id) or fallback
                kpp = (digits[:4] or "7700") + ("01001" if k == 1 else "02001") if len(digits) == 10 else ""
                ogrn = str(1_000_000_000_000 + stable_int(c.source_name, c.id, "ogrn") % 8_999_999_999_999)
                rows.append(
                    {
                        "ID": str(int(c.id) * 10 + k),
                        "ENTITY_TYPE_ID": "4",
                        "ENTITY_ID": c.id,
                        "PRESET_ID": "1",
                        "DATE_CREATE": instant(c.created_at),
                        "DATE_MODIFY": instant(c.updated_at),
                        "CREATED_BY_ID": assigned,
                        "MODIFY_BY_ID": assigned,
                        "NAME": "Организация" if k == 1 else "Обособленное подразделение",
                        "CODE": None,
                        "XML_ID": None,
                        "ORIGINATOR_ID": None,
                        "ACTIVE": "Y",
                        "ADDRESS_ONLY": "N",
                        "SORT": str(500 + 10 * (k - 1)),
                        "RQ_COMPANY_NAME": c.name,
                        "RQ_COMPANY_FULL_NAME": c.name,
                        "RQ_DIRECTOR": None,
                        "RQ_INN": c.inn_rendered,
                        "RQ_KPP": kpp,
                        "RQ_OGRN": ogrn if len(digits) == 10 else "",
                        "RQ_OKPO": None,
                    }
                )
        return rows


class Portal:
    """One source's records, as REST serves them at ``world.now``. Each family is rendered on
    first use, so a request pays only for what it reads; the stand-in keeps one per world
    version (``Bitrix24StandIn.portal``)."""

    def __init__(self, world: World, source_name: str):
        self._r = _Renderer(world, source_name)
        # (list, filter, order) -> the matching rows in order, and their IDs once a page asks
        # for an ID bound: what a portal's indexes give (``methods._list``)
        self.ordered: dict[tuple[str, ...], tuple[list[dict[str, Any]], list[Any] | None]] = {}

    @cached_property
    def users(self) -> list[dict[str, Any]]:
        return self._r.users()

    @cached_property
    def categories(self) -> list[dict[str, Any]]:
        return self._r.categories()

    @cached_property
    def statuses(self) -> list[dict[str, Any]]:
        return self._r.statuses()

    @cached_property
    def deal_fields(self) -> dict[str, dict[str, Any]]:
        return self._r.deal_fields()

    @cached_property
    def deals(self) -> list[dict[str, Any]]:
        return self._r.deals()

    @cached_property
    def stage_history(self) -> list[dict[str, Any]]:
        return self._r.stage_history()

    @cached_property
    def timeline_comments(self) -> dict[str, list[dict[str, Any]]]:
        """deal id -> its timeline comments (deals without any are absent)."""
        return self._r.timeline_comments()

    @cached_property
    def companies(self) -> list[dict[str, Any]]:
        return self._r.companies_rows()

    @cached_property
    def contacts(self) -> list[dict[str, Any]]:
        return self._r.contacts_rows()

    @cached_property
    def requisites(self) -> list[dict[str, Any]]:
        return self._r.requisites_rows()
