"""World -> the records a Megaplan account serves over API v3.

Every entity is a JSON object tagged with ``contentType``; a reference to another entity is
a *link* (``{"contentType": "Employee", "id": "1000005"}``). Cards (``GET /deal/{id}``)
carry the whole record and links with their ``name``; collections carry a reduced field set
(``LIST_FIELDS``) plus what ``fields`` asks for, and their links are bare. Dates are
``DateTime`` objects with the account's offset (``Source.timezone``), money is ``Money``.

How the world maps (see README.md here for the whole table):

- a ``Pipeline`` of the source is a deal program (схема сделки), its ``Stage``s are the
  program's states: process and conditional-refusal stages are ``active``, won stages
  ``positive``, lost stages ``negative``;
- the deal's ``Move``s are its status history (one row per change of state);
- the source's ``LossReason``s are the values of an enumeration custom field
  ``Причина отказа`` that every program of the account has (``Category<n>CustomField
  PrichinaOtkaza``); a lost deal with ``loss_reason_id`` carries the reason's name there;
- companies are contractor companies; their INN is on their payer (requisites).
"""

from __future__ import annotations

import html
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.world.model import Comment, Company, Deal, LossReason, Manager, Move, Pipeline, Stage, World
from sandbox.world.money import rate_on
from sandbox.world.vocabulary import translit

Record = dict[str, Any]

STATE_TYPE = {"process": "active", "conditional_refusal": "active", "won": "positive", "lost": "negative"}
RESULT = {"open": "active", "won": "positive", "lost": "negative"}
MAIN_CURRENCY = "RUB"
LOSS_REASON_FIELD_TITLE = "Причина отказа"
# a program's custom fields are named after its category: Category<CATEGORY_BASE + program id>
CATEGORY_BASE = 1_000_000
_COLORS = ("#2f80ed", "#27ae60", "#f2994a", "#9b51e0", "#56ccf2", "#eb5757", "#828282")

# What a collection serves of each entity without ``fields`` ("в коллекции" of the reference).
LIST_FIELDS: dict[str, tuple[str, ...]] = {
    "Deal": ("contentType", "id", "name", "number", "program", "state", "result", "manager", "contractor",
             "price", "timeCreated"),
    "Program": ("contentType", "id", "name"),
    "ProgramState": ("contentType", "id", "name", "type", "color", "isEntry", "program"),
    "Employee": ("contentType", "id", "name", "firstName", "middleName", "lastName", "position"),
    "ContractorCompany": ("contentType", "id", "name", "timeCreated"),
}  # fmt: skip
# References (bare links in a collection, links with a name on a card).
LINK_FIELDS: dict[str, tuple[str, ...]] = {
    "Deal": ("program", "state", "manager", "contractor", "contact", "payer", "userCreated", "userUpdated",
             "lastComment", "auditors"),
    "Program": ("states",),
    "ProgramState": ("program",),
    "Employee": ("department",),
    "ContractorCompany": ("responsibles",),
}  # fmt: skip
# Every standard field of the card (what ``fields`` may name besides custom fields).
CARD_FIELDS: dict[str, tuple[str, ...]] = {
    "Deal": (
        "contentType", "id", "number", "name", "description", "shortDescription", "program", "state",
        "stateTimeUpdated", "result", "manager", "contractor", "contact", "payer", "price", "cost", "currency",
        "debt", "paymentProgress", "positions", "invoices", "timeCreated", "timeUpdated", "userCreated",
        "userUpdated", "lastComment", "lastCommentTimeCreated", "commentsCount", "tags", "auditors",
    ),
    "Program": ("contentType", "id", "name", "states", "transitions", "triggers", "roles", "isBpm", "programGroup"),
    "ProgramState": ("contentType", "id", "name", "description", "type", "color", "isEntry", "entryPointName",
                     "program"),
    "Employee": ("contentType", "id", "name", "firstName", "middleName", "lastName", "position", "department",
                 "isWorking", "contactInfo", "timeCreated"),
    "ContractorCompany": ("contentType", "id", "name", "description", "responsibles", "contactInfo", "payers",
                          "timeCreated", "timeUpdated", "dealsCount"),
}  # fmt: skip


def link(content_type: str, entity_id: str | None, name: str | None = None) -> Record | None:
    if entity_id is None:
        return None
    out: Record = {"contentType": content_type, "id": entity_id}
    if name is not None:
        out["name"] = name
    return out


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def category_of(pipeline: Pipeline) -> int:
    digits = "".join(ch for ch in pipeline.id if ch.isdigit()) or str(
        zlib.crc32(pipeline.id.encode()) % 100_000
    )
    return CATEGORY_BASE + int(digits)


def loss_reason_field_name(pipeline: Pipeline) -> str:
    """``Category1000011CustomFieldPrichinaOtkaza``: how Megaplan names a program's custom field."""
    title = "".join(part.capitalize() for part in translit(LOSS_REASON_FIELD_TITLE).split())
    return f"Category{category_of(pipeline)}CustomField{title}"


def history_row_id(deal: Deal, position: int) -> str:
    """A stable id for the deal's ``position``-th state change (1-based)."""
    return str(_numeric(deal.id) * 1000 + position)


def field_change_id(deal: Deal, position: int) -> str:
    return str(_numeric(deal.id) * 1000 + 500 + position)


def payer_id(company: Company) -> str:
    return str(_numeric(company.id) * 10 + 1)


def _numeric(text: str) -> int:
    return int(text) if text.isdigit() else zlib.crc32(text.encode()) % 10_000_000


@dataclass
class StateChange:
    """One row of a deal's status history: from one stage to the next."""

    position: int
    before: Move
    after: Move


class Renderer:
    """Renders one Megaplan account (one ``Source`` of the world) as it is now."""

    def __init__(self, world: World, source_name: str):
        self.world = world
        self.source_name = source_name
        self.zone = ZoneInfo(world.source(source_name).timezone)
        self.managers: dict[str, Manager] = {m.key: m for m in world.managers}
        self.pipelines: list[Pipeline] = sorted(
            (p for p in world.pipelines if p.source_name == source_name), key=lambda p: (p.sort, p.id)
        )
        self.pipeline_by_id = {p.id: p for p in self.pipelines}
        self.companies: list[Company] = [c for c in world.companies if c.source_name == source_name]
        self.company_by_id = {c.id: c for c in self.companies}
        self.reasons: list[LossReason] = [r for r in world.loss_reasons if r.source_name == source_name]
        self.reason_by_id = {r.id: r for r in self.reasons}

    # -- values -------------------------------------------------------------------------
    def when(self, at: datetime | None) -> Record | None:
        if at is None:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return {"contentType": "DateTime", "value": at.astimezone(self.zone).isoformat(timespec="seconds")}

    def money(self, amount: Decimal, currency: str, at: datetime) -> Record:
        try:
            rate = rate_on(self.world.rates, currency, at)
        except KeyError:
            rate = Decimal(1)
        return {
            "contentType": "Money",
            "value": number(amount),
            "currency": currency,
            "valueInMain": number((amount * rate).quantize(Decimal("0.01"))),
            "rate": number(rate),
        }

    def employee_id(self, manager_key: str | None) -> str | None:
        manager = self.managers.get(manager_key or "")
        return manager.user_ids.get(self.source_name) if manager else None

    def employee_link(self, manager_key: str | None, card: bool) -> Record | None:
        manager = self.managers.get(manager_key or "")
        user_id = manager.user_ids.get(self.source_name) if manager else None
        if manager is None or user_id is None:
            return None
        return link("Employee", user_id, manager.name if card else None)

    def state_link(self, pipeline_id: str, stage_id: str, card: bool) -> Record | None:
        pipeline = self.pipeline_by_id.get(pipeline_id)
        stage = _stage(pipeline, stage_id) if pipeline else None
        return link("ProgramState", stage_id, stage.name if (card and stage) else None)

    def deals(self) -> list[Deal]:
        """The account's deals, deleted ones excluded (they are gone from the API), by id."""
        live = [d for d in self.world.deals_of(self.source_name) if d.deleted_at is None]
        return sorted(live, key=lambda d: (_numeric(d.id), d.id))

    # -- deals --------------------------------------------------------------------------
    def deal(self, deal: Deal, card: bool) -> Record:
        """Every field of the deal (links with names on a card, bare in a collection)."""
        pipeline = self.pipeline_by_id.get(deal.pipeline_id)
        moves = sorted(deal.moves, key=lambda m: m.at)
        comments = sorted(deal.comments, key=lambda c: (c.at, c.id))
        company = self.company_by_id.get(deal.company_id or "")
        last = comments[-1] if comments else None
        record: Record = {
            "contentType": "Deal",
            "id": deal.id,
            "number": deal.number,
            "name": deal.name,
            "description": "",
            "shortDescription": deal.name,
            "program": link("Program", deal.pipeline_id, pipeline.name if (card and pipeline) else None),
            "state": self.state_link(deal.pipeline_id, deal.stage_id, card),
            "stateTimeUpdated": self.when(moves[-1].at if moves else deal.created_at),
            "result": RESULT[deal.status],
            "manager": self.employee_link(deal.manager_key, card),
            "contractor": link("ContractorCompany", company.id, company.name if card else None)
            if company
            else None,
            "contact": None,
            "payer": link("Payer", payer_id(company)) if company and company.inn_rendered else None,
            "price": self.money(deal.amount, deal.currency, deal.created_at),
            "cost": None,
            "currency": deal.currency,
            "debt": None,
            "paymentProgress": 100 if deal.status == "won" else 0,
            "positions": [],
            "invoices": [],
            "timeCreated": self.when(deal.created_at),
            "timeUpdated": self.when(deal.updated_at),
            "userCreated": self.employee_link(moves[0].by_user_key if moves else None, card),
            "userUpdated": self.employee_link(deal.manager_key, card),
            "lastComment": link("Comment", last.id) if last else None,
            "lastCommentTimeCreated": self.when(last.at) if last else None,
            "commentsCount": len(comments),
            "tags": [],
            "auditors": [],
        }
        record.update(self.custom_fields(deal))
        return record

    def custom_fields(self, deal: Deal) -> Record:
        """The deal's program's custom fields: the loss reason enumeration, when the account has reasons."""
        pipeline = self.pipeline_by_id.get(deal.pipeline_id)
        if pipeline is None or not self.reasons:
            return {}
        reason = self.reason_by_id.get(deal.loss_reason_id or "") if deal.status == "lost" else None
        return {loss_reason_field_name(pipeline): reason.name if reason else None}

    def deal_field_definitions(self) -> list[Record]:
        """``GET /deal/extraFields``: the custom fields of every program."""
        if not self.reasons:
            return []
        return [
            {
                "contentType": "Field",
                "id": loss_reason_field_name(p),
                "name": loss_reason_field_name(p),
                "hint": LOSS_REASON_FIELD_TITLE,
                "type": "EnumField",
                "enumValues": [r.name for r in self.reasons],
                "isRequired": False,
                "program": link("Program", p.id),
            }
            for p in self.pipelines
        ]

    # -- programs and states ------------------------------------------------------------
    def program(self, pipeline: Pipeline, card: bool) -> Record:
        return {
            "contentType": "Program",
            "id": pipeline.id,
            "name": pipeline.name,
            "states": [link("ProgramState", s.id, s.name) for s in _ordered(pipeline)],
            "transitions": [],
            "triggers": [],
            "roles": [],
            "isBpm": False,
            "programGroup": None,
        }

    def states(self, pipeline: Pipeline) -> list[Record]:
        ordered = _ordered(pipeline)
        return [
            {
                "contentType": "ProgramState",
                "id": s.id,
                "name": s.name,
                "description": "",
                "type": STATE_TYPE[s.kind],
                "color": _COLORS[i % len(_COLORS)],
                "isEntry": i == 0,
                "entryPointName": "Вход" if i == 0 else None,
                "program": link("Program", pipeline.id),
            }
            for i, s in enumerate(ordered)
        ]

    # -- the deal's history and comments -------------------------------------------------
    def changes(self, deal: Deal) -> list[StateChange]:
        """Moves that changed the state (a move to the state the deal is in is not a change)."""
        moves = sorted(deal.moves, key=lambda m: m.at)
        out: list[StateChange] = []
        for before, after in zip(moves, moves[1:], strict=False):
            if (after.pipeline_id, after.stage_id) != (before.pipeline_id, before.stage_id):
                out.append(StateChange(len(out) + 1, before, after))
        return out

    def status_history(self, deal: Deal) -> list[Record]:
        """``GET /deal/{id}/statusHistory``: newest first (the order is not documented)."""
        rows = [
            {
                "contentType": "DealStatusHistory",
                "id": history_row_id(deal, change.position),
                "fromStatus": self.state_link(change.before.pipeline_id, change.before.stage_id, card=True),
                "toStatus": self.state_link(change.after.pipeline_id, change.after.stage_id, card=True),
                "fromStatusUpdated": self.when(change.before.at),
                "toStatusUpdated": self.when(change.after.at),
                "fromStatusUser": self.employee_link(change.before.by_user_key, card=False),
                "toStatusUser": self.employee_link(change.after.by_user_key, card=False),
            }
            for change in self.changes(deal)
        ]
        return list(reversed(rows))

    def comment(self, deal: Deal, comment: Comment) -> Record:
        return {
            "contentType": "Comment",
            "id": comment.id,
            # the web editor stores HTML
            "content": "<p>" + html.escape(comment.text, quote=False).replace("\n", "<br>") + "</p>",
            "subject": link("Deal", deal.id),
            "owner": self.employee_link(comment.author_key, card=False),
            "timeCreated": self.when(comment.at),
            "timeUpdated": self.when(comment.at),
            "attaches": [],
            "isDropped": False,
            "isHidden": False,
        }

    def feed(self, deal: Deal) -> list[Record]:
        """``GET /deal/{id}/comments``: comments and the journal's state changes, oldest first."""
        items: list[tuple[datetime, int, Record]] = [(c.at, 1, self.comment(deal, c)) for c in deal.comments]
        for change in self.changes(deal):
            items.append(
                (
                    change.after.at,
                    0,
                    {
                        "contentType": "FieldChange",
                        "id": field_change_id(deal, change.position),
                        "field": "state",
                        "oldValue": self.state_link(change.before.pipeline_id, change.before.stage_id, True),
                        "newValue": self.state_link(change.after.pipeline_id, change.after.stage_id, True),
                        "timeCreated": self.when(change.after.at),
                        "author": self.employee_link(change.after.by_user_key, card=False),
                    },
                )
            )
        items.sort(key=lambda item: (item[0], item[1], item[2]["id"]))
        return [record for _, _, record in items]

    # -- people and clients -------------------------------------------------------------
    def employees(self) -> list[Record]:
        users = [m for m in self.world.managers if self.source_name in m.user_ids]
        out = []
        for manager in sorted(users, key=lambda m: _numeric(m.user_ids[self.source_name])):
            parts = manager.name.split()
            last_name = parts[0] if parts else ""
            first_name = parts[1] if len(parts) > 1 else ""
            middle_name = " ".join(parts[2:])
            email = manager.emails_by_source.get(self.source_name, manager.email)
            out.append(
                {
                    "contentType": "Employee",
                    "id": manager.user_ids[self.source_name],
                    "name": manager.name,
                    "firstName": first_name,
                    "middleName": middle_name,
                    "lastName": last_name,
                    "position": "Менеджер по продажам",
                    "department": None,
                    "isWorking": manager.active.get(self.source_name, True),
                    "contactInfo": [
                        {"contentType": "ContactInfo", "type": "email", "value": email, "isMain": True}
                    ],
                    "timeCreated": None,
                }
            )
        return out

    def contractor_companies(self) -> list[Record]:
        deals_by_company: dict[str, int] = {}
        for deal in self.deals():
            if deal.company_id:
                deals_by_company[deal.company_id] = deals_by_company.get(deal.company_id, 0) + 1
        out = []
        for company in sorted(self.companies, key=lambda c: (_numeric(c.id), c.id)):
            out.append(
                {
                    "contentType": "ContractorCompany",
                    "id": company.id,
                    "name": company.name,
                    "description": "",
                    "responsibles": [],
                    "contactInfo": [],
                    "payers": [self.payer(company)] if company.inn_rendered else [],
                    "timeCreated": self.when(company.created_at),
                    "timeUpdated": self.when(company.updated_at),
                    "dealsCount": deals_by_company.get(company.id, 0),
                }
            )
        return out

    def payer(self, company: Company) -> Record:
        individual = company.inn_canonical is not None and len(company.inn_canonical) == 12
        return {
            "contentType": "Payer",
            "id": payer_id(company),
            "name": company.name,
            "type": "Natural" if individual else "Legal",
            "inn": company.inn_rendered or "",
            "kpp": "",
            "ogrn": "",
            "legalAddress": "",
            "contractor": link("ContractorCompany", company.id),
        }


def _ordered(pipeline: Pipeline) -> list[Stage]:
    return sorted(pipeline.stages, key=lambda s: (s.sort, s.id))


def _stage(pipeline: Pipeline, stage_id: str) -> Stage | None:
    return next((s for s in pipeline.stages if s.id == stage_id), None)


def select(record: Record, content_type: str, fields: list[str] | None, only_requested: bool) -> Record:
    """What a collection serves of ``record``: its list fields plus ``fields`` (only ``fields``
    and the identity with ``onlyRequestedFields``). References of a collection are bare links;
    embedded entities (a company's payers) stay whole."""
    wanted = list(fields or [])
    base = ("contentType", "id") if only_requested else LIST_FIELDS[content_type]
    names = list(dict.fromkeys([*base, *wanted]))
    links = LINK_FIELDS.get(content_type, ())
    return {name: _bare(record[name]) if name in links else record[name] for name in names if name in record}


def _bare(value: Any) -> Any:
    if isinstance(value, dict) and "contentType" in value and "id" in value:
        return {"contentType": value["contentType"], "id": value["id"]}
    if isinstance(value, list):
        return [_bare(v) for v in value]
    return value
