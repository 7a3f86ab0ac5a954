"""A small Megaplan world built by hand from the model's dataclasses, for the stand-in's and
the extractor's tests (the world generator's own Megaplan deals are its business).

``build_world(seed, deals)`` gives one Megaplan account with two programs that keep the loss
reason in the two ways companies do: "Продажи" has one negative state per reason (the
state's name is the reason), "Проекты" has one generic negative state "Отказ" and the
reason in the enumeration custom field. It has a conditional refusal state, an unmapped
state, a state name with an emoji, open/won/lost deals, deals without a company, robot moves,
comments (lost deals mostly), deals in USD, a deactivated manager and deleted deals.
``evolve(world, seed, hours)`` changes it the way a working day does and says what changed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandbox.world.layout import CONDITIONAL_REFUSAL_NAME, MEGAPLAN_PROGRAMS
from sandbox.world.model import (
    Comment,
    Company,
    Deal,
    LossReason,
    Manager,
    Move,
    Pipeline,
    Source,
    Stage,
    World,
)
from sandbox.world.money import build_rates, moscow_date
from sandbox.world.vocabulary import make_inn, render_inn

SOURCE = "megaplan_main"
NOW = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
REFUSAL = CONDITIONAL_REFUSAL_NAME

# the programs are the generated world's (id, name, kind, canonical, reason named by the state)
SALES_STAGES = MEGAPLAN_PROGRAMS[("11", "Продажи")]
PROJECT_STAGES = MEGAPLAN_PROGRAMS[("12", "Проекты")]
# the enumeration custom field's values: id, name, canonical code
REASONS = [
    ("9001", "Нет бюджета", "no_budget"),
    ("9002", "Дорого", "high_price"),
    ("9003", "Выбрали другого поставщика", "other_supplier"),
    ("9004", "Не актуально", "not_interested"),
    ("9005", "Сорвали сроки", None),
]
MANAGERS = [
    ("m01", "Иванов Иван Петрович", "1000001"),
    ("m02", "Сидорова Анна", "1000002"),
    ("m03", "Кузнецов Олег", "1000003"),
    ("m04", "Петрова Мария", "1000004"),
    ("m05", "Смирнов Денис", "1000005"),  # deactivated
]
FIRST_DEAL_ID = 5001
FIRST_COMMENT_ID = 7_000_001
FIRST_COMPANY_ID = 2_000_001
LOSS_COMMENTS = [
    "Клиент выбрал поставщика с отсрочкой платежа",
    "Бюджет на этот год закрыт, вернуться осенью",
    "Цена выше рынка на 15%, торговаться не готовы",
    "не актуал",
    "Закупку перенесли на следующий квартал",
]
WORK_COMMENTS = ["Созвонились, ждём ТЗ", "Отправил КП на почту", "Клиент просит скидку <5%> & доставку"]


def pipelines() -> list[Pipeline]:
    def build(
        pid: str, name: str, rows: list[tuple[str, str, str, str | None, str | None]], sort: int
    ) -> Pipeline:
        stages = [
            Stage(sid, sname, kind, (i + 1) * 10, canonical, reason_name=reason)  # type: ignore[arg-type]
            for i, (sid, sname, kind, canonical, reason) in enumerate(rows)
        ]
        return Pipeline(pid, SOURCE, name, stages, sort=sort, is_main=sort == 1)

    return [build("11", "Продажи", SALES_STAGES, 1), build("12", "Проекты", PROJECT_STAGES, 2)]


def build_world(seed: int = 3, deals: int = 240, now: datetime = NOW, source_name: str = SOURCE) -> World:
    rng = random.Random(seed)
    managers = [
        Manager(
            key=key,
            name=name,
            email=f"{key}@firma.example.ru",
            strengths={},
            user_ids={source_name: user_id},
            emails_by_source={source_name: f"{key.upper()}@Firma.example.ru"},
            active={source_name: key != "m05"},
        )
        for key, name, user_id in MANAGERS
    ]
    start = now - timedelta(days=150)
    companies = []
    for i in range(max(8, deals // 8)):
        inn = make_inn(rng, individual=i % 9 == 4)
        style = ("plain", "prefixed", "spaced", "plain")[i % 4]
        rendered = None if i % 7 == 3 else render_inn(inn, style)
        companies.append(
            Company(
                id=str(FIRST_COMPANY_ID + i),
                source_name=source_name,
                name=f"ООО «Клиент {i + 1}»",
                inn_canonical=inn,
                inn_rendered=rendered,
                customer_key=f"c{i + 1:04d}",
                created_at=start - timedelta(days=30 + i),
                updated_at=start - timedelta(days=i % 5),
            )
        )
    world = World(
        seed=seed,
        size=deals,
        now=now,
        sources=[Source(source_name, "megaplan")],
        managers=managers,
        companies=companies,
        contacts=[],
        pipelines=[_own(p, source_name) for p in pipelines()],
        loss_reasons=[LossReason(rid, source_name, name, code, start) for rid, name, code in REASONS],
        deals=[],
        rates=build_rates(rng, moscow_date(start) - timedelta(days=1), moscow_date(now + timedelta(days=30))),
    )
    for n in range(deals):
        created = start + timedelta(seconds=rng.randrange(int((now - start).total_seconds()) - 3600))
        deal = new_deal(world, rng, str(FIRST_DEAL_ID + n), created)
        play(world, rng, deal, until=now)
        if rng.random() < 0.03:
            deal.deleted_at = min(now, deal.updated_at + timedelta(hours=rng.randrange(1, 48)))
            deal.updated_at = deal.deleted_at
        world.deals.append(deal)
    return world


def _own(pipeline: Pipeline, source_name: str) -> Pipeline:
    pipeline.source_name = source_name
    return pipeline


def _source_name(world: World) -> str:
    return next(s.name for s in world.sources if s.system == "megaplan")


def _working_managers(world: World) -> list[Manager]:
    name = _source_name(world)
    return [m for m in world.managers if m.active.get(name, True)]


def new_deal(world: World, rng: random.Random, deal_id: str, created: datetime) -> Deal:
    source_name = _source_name(world)
    pipeline = rng.choices([p for p in world.pipelines if p.source_name == source_name], weights=[3, 2])[0]
    first = min(pipeline.stages, key=lambda s: s.sort)
    manager = rng.choice(_working_managers(world))
    companies = [c for c in world.companies if c.source_name == source_name]
    company = rng.choice(companies) if rng.random() < 0.9 else None
    currency = "USD" if rng.random() < 0.1 else "RUB"
    amount = (
        Decimal(rng.randrange(20, 4000) * 500) if currency == "RUB" else Decimal(rng.randrange(5, 400) * 25)
    )
    robot = rng.random() < 0.2
    return Deal(
        id=deal_id,
        source_name=source_name,
        number=deal_id,
        name=f"Поставка оборудования №{deal_id}" if pipeline.id == "11" else f"Проект внедрения №{deal_id}",
        pipeline_id=pipeline.id,
        stage_id=first.id,
        manager_key=manager.key,
        company_id=company.id if company else None,
        contact_ids=[],
        amount=amount,
        currency=currency,
        created_at=created,
        updated_at=created,
        closed_at=None,
        status="open",
        loss_reason_id=None,
        comments=[],
        moves=[Move(created, pipeline.id, first.id, manager.key, None if robot else manager.key)],
    )


def _next_comment_id(world: World) -> str:
    ids = [int(c.id) for d in world.deals for c in d.comments if c.id.isdigit()]
    return str(max(ids, default=FIRST_COMMENT_ID - 1) + 1)


def _comment(world: World, deal: Deal, at: datetime, text: str, pending: list[Comment]) -> None:
    taken = [int(c.id) for c in pending]
    comment_id = str(max([int(_next_comment_id(world)), *(t + 1 for t in taken)]))
    comment = Comment(comment_id, at, deal.manager_key, text)
    deal.comments.append(comment)
    pending.append(comment)


def play(
    world: World,
    rng: random.Random,
    deal: Deal,
    until: datetime,
    since: datetime | None = None,
    steps: int | None = None,
) -> bool:
    """Move an open deal on between ``since`` (default: its last move) and ``until``; True when
    it changed."""
    if deal.status != "open" or deal.deleted_at is not None:
        return False
    pipeline = next(p for p in world.pipelines if p.id == deal.pipeline_id)
    process = sorted((s for s in pipeline.stages if s.kind == "process"), key=lambda s: s.sort)
    refusal = next((s for s in pipeline.stages if s.kind == "conditional_refusal"), None)
    won = next(s for s in pipeline.stages if s.kind == "won")
    lost = [s for s in pipeline.stages if s.kind == "lost"]
    at = max([m.at for m in deal.moves] + ([since] if since else []))
    changed = False
    added: list[Comment] = []
    budget = steps if steps is not None else rng.randrange(0, len(process) + 3)
    for _ in range(budget):
        at = (
            at + timedelta(hours=rng.randrange(2, 96))
            if since is None
            else at + timedelta(minutes=rng.randrange(5, 300))
        )
        if at >= until:
            break
        current = next(s for s in pipeline.stages if s.id == deal.stage_id)
        roll = rng.random()
        by = None if rng.random() < 0.15 else deal.manager_key
        if current.kind == "process" and current.id != process[-1].id and roll < 0.7:
            target = process[process.index(current) + 1]
        elif roll < 0.8 and current.kind == "process" and current.id == process[-1].id:
            target = won
        elif refusal is not None and current.kind == "process" and roll < 0.9:
            target = refusal
        else:
            target = rng.choice(lost)
        deal.moves.append(Move(at, pipeline.id, target.id, deal.manager_key, by))
        deal.stage_id = target.id
        changed = True
        if target.kind in ("won", "lost"):
            deal.status = "won" if target.kind == "won" else "lost"
            deal.closed_at = at
            if target.kind == "lost":
                reasons = [r for r in world.loss_reasons if r.source_name == deal.source_name]
                if not target.reason_name and rng.random() < 0.9:
                    deal.loss_reason_id = rng.choice(reasons).id
                if rng.random() < 0.85:
                    _comment(world, deal, at + timedelta(minutes=3), rng.choice(LOSS_COMMENTS), added)
            break
        if rng.random() < 0.25:
            _comment(world, deal, at + timedelta(minutes=20), rng.choice(WORK_COMMENTS), added)
    if changed:
        deal.updated_at = max([m.at for m in deal.moves] + [c.at for c in deal.comments])
    return changed


@dataclass
class Changes:
    created: set[str] = field(default_factory=set)
    updated: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)

    @property
    def all(self) -> set[str]:
        return self.created | self.updated | self.deleted


def evolve(world: World, seed: int, hours: float = 24) -> Changes:
    """A working day: some open deals move on (some close), some get a comment or a new amount,
    three deals are created and one is deleted. Call it under the stand-in's lock."""
    rng = random.Random(f"evolve:{world.seed}:{seed}:{world.now.isoformat()}")
    before, after = world.now, world.now + timedelta(hours=hours)
    minutes = int(hours * 60)
    changes = Changes()
    live = [d for d in world.deals if d.deleted_at is None]
    for deal in live:
        roll = rng.random()
        if deal.status == "open" and roll < 0.08:
            if play(world, rng, deal, after, since=before, steps=rng.randrange(1, 3)):
                changes.updated.add(deal.id)
        elif roll < 0.11:
            added: list[Comment] = []
            at = before + timedelta(minutes=rng.randrange(1, minutes))
            _comment(world, deal, at, rng.choice(WORK_COMMENTS), added)
            deal.updated_at = max(deal.updated_at, at)
            changes.updated.add(deal.id)
        elif deal.status == "open" and roll < 0.13:
            deal.amount = deal.amount + Decimal(1000)
            deal.updated_at = before + timedelta(minutes=rng.randrange(1, minutes))
            changes.updated.add(deal.id)
    next_id = max(int(d.id) for d in world.deals) + 1
    for n in range(3):
        created = before + timedelta(minutes=rng.randrange(1, minutes))
        deal = new_deal(world, rng, str(next_id + n), created)
        play(world, rng, deal, after, since=created, steps=rng.randrange(0, 3))
        world.deals.append(deal)
        changes.created.add(deal.id)
    victim = rng.choice(sorted((d for d in live if d.id not in changes.updated), key=lambda d: int(d.id)))
    victim.deleted_at = after - timedelta(minutes=5)
    victim.updated_at = victim.deleted_at
    changes.deleted.add(victim.id)
    world.now = after
    return changes
