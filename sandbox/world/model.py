"""The sandbox's sales world: plain data, independent of any API's rendering.

The generator (``sandbox.world.generate``) builds a ``World``; the truth
(``sandbox.world.truth``) is computed from it; each stand-in renders it in its own API's
shape. Nothing here knows about HTTP or about the warehouse.

Identifiers are the source system's own: amoCRM and Bitrix24 use integers (kept as ``str``
here so that one type serves every system), 1C uses GUIDs. ``source_name`` is the
connection name of ``sources.yaml`` (``amo_retail``, ``b24_wholesale``, ``erp``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

System = Literal["amocrm", "bitrix24", "onec", "megaplan", "creatio", "rosbiznessoft", "file"]
DealStatus = Literal["open", "won", "lost"]
StageKind = Literal["process", "conditional_refusal", "won", "lost"]


@dataclass
class Source:
    """One connection: a CRM account or a 1C base."""

    name: str  # connection name, e.g. "amo_retail"
    system: System
    timezone: str = "Europe/Moscow"  # 1C dates carry no zone: rendered in this one


@dataclass
class Manager:
    """One person of the sales team. May have an account in several systems."""

    key: str  # world-wide, e.g. "m01"
    name: str  # "Иванов Иван"
    email: str  # canonical lower-case e-mail
    # per-stage conversion strength: canonical stage code -> probability of moving on
    strengths: dict[str, float]
    # source name -> the user's id in that system
    user_ids: dict[str, str] = field(default_factory=dict)
    # source name -> the e-mail as that system spells it (case differs between systems)
    emails_by_source: dict[str, str] = field(default_factory=dict)
    # source name -> False when the user is deactivated in that system
    active: dict[str, bool] = field(default_factory=dict)


@dataclass
class Contact:
    id: str  # source-native id
    source_name: str
    name: str
    phone: str
    email: str
    company_id: str | None


@dataclass
class Company:
    """A customer as one system knows it."""

    id: str  # source-native id
    source_name: str
    name: str
    inn_canonical: str | None  # the true INN (10 or 12 digits) or None
    inn_rendered: str | None  # as this system writes it ("77 01 234567", "ИНН 7701234567", "")
    customer_key: str  # world-wide identity of the customer, e.g. "c0042"
    created_at: datetime
    updated_at: datetime
    contact_ids: list[str] = field(default_factory=list)


@dataclass
class Stage:
    id: str  # source-native: amo status id, Bitrix STATUS_ID ("C1:NEW"), 1C Ref_Key
    name: str
    kind: StageKind
    sort: int
    # the demo mapping's canonical stage code (None for won/lost/conditional refusal stages
    # and for stages the demo mapping deliberately leaves unmapped)
    canonical: str | None
    # Bitrix24 failure stages that name a reason ("Проиграна: цена"): the source reason
    reason_name: str | None = None
    predefined_name: str | None = None  # 1C PredefinedDataName


@dataclass
class Pipeline:
    id: str  # amo pipeline id, Bitrix category id, 1C deal kind Ref_Key
    source_name: str
    name: str
    stages: list[Stage]
    sort: int = 0
    is_main: bool = False

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(f"{self.source_name}: pipeline {self.id} has no stage {stage_id}")


@dataclass
class LossReason:
    id: str  # amo loss reason id, Bitrix enum item ID, 1C Ref_Key
    source_name: str
    name: str  # the source's own text ("Дорого", "Нет бюджета", ...)
    # the demo mapping's canonical code, or None when the demo mapping does not know it
    canonical: str | None
    created_at: datetime | None = None


@dataclass
class Move:
    """The deal entered ``stage_id`` of ``pipeline_id`` at ``at``; ``manager_key`` was
    responsible at that moment. The first move is the deal's creation."""

    at: datetime
    pipeline_id: str
    stage_id: str
    manager_key: str
    by_user_key: str | None = None  # who moved it (None: a robot / the system)


@dataclass
class Comment:
    id: str
    at: datetime
    author_key: str
    text: str


@dataclass
class Deal:
    id: str  # source-native id (amo/Bitrix integer as str, 1C Ref_Key)
    source_name: str
    number: str  # what a person reads: amo/Bitrix id, 1C Code
    name: str
    pipeline_id: str  # current pipeline
    stage_id: str  # current stage
    manager_key: str  # current responsible
    company_id: str | None
    contact_ids: list[str]
    amount: Decimal
    currency: str  # "RUB", "USD", "EUR"
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    status: DealStatus
    loss_reason_id: str | None  # set on lost deals that have a reason
    # the comment a manager wrote on the loss: amo common note, Bitrix COMMENTS or a
    # timeline comment, 1C Комментарий
    comments: list[Comment]
    moves: list[Move]
    deleted_at: datetime | None = None
    # for 1C: stage rows whose dates were left empty, references left empty, ... ;
    # for every system: the deliberate defects this deal carries (see sandbox/README.md)
    defects: set[str] = field(default_factory=set)


@dataclass
class World:
    seed: int
    size: int
    now: datetime  # the world's clock (UTC); advancing the world moves it
    sources: list[Source]
    managers: list[Manager]
    companies: list[Company]
    contacts: list[Contact]
    pipelines: list[Pipeline]
    loss_reasons: list[LossReason]
    deals: list[Deal]
    # (currency, day) -> roubles for one unit; RUB is implicit 1
    rates: dict[tuple[str, date], Decimal]

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    def deals_of(self, source_name: str) -> list[Deal]:
        return [d for d in self.deals if d.source_name == source_name]
