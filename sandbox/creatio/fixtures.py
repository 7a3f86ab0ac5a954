"""Small Creatio worlds built by hand, for the stand-in's and the extractor's tests (the
demo world comes from ``sandbox.world.generate``).

``build_world`` makes one Creatio site with every case the stand-in renders: deals that skip
stages, step back, pass the conditional refusal and come back to work with another manager,
change hands without changing stage, close won and lost (with and without a reason and a
comment), and deals deleted in Creatio. ``change_world`` moves it on like a working day does.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandbox.world.model import (
    Comment,
    Company,
    Contact,
    Deal,
    LossReason,
    Manager,
    Move,
    Pipeline,
    Source,
    Stage,
    World,
)

SOURCE = "creatio_b2b"
START = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
STAGES = [  # name, kind, canonical
    ("Квалификация", "process", "new"),
    ("Презентация", "process", "contact"),
    ("КП отправлено", "process", "proposal"),
    ("Согласование договора", "process", "contract"),
    ("Условный отказ", "conditional_refusal", None),
    ("Закрыта успешно", "won", None),
    ("Закрыта и не реализована", "lost", None),
    ("Отклонена клиентом", "lost", None),
]
REASONS = [
    ("Нет бюджета", "no_budget"),
    ("Выбрали другого поставщика", "other_supplier"),
    ("Высокая цена", "high_price"),
    ("Закупка отложена", "not_planned"),
    ("Не подходит продукт", "not_fit"),
    ("Не выходит на связь", None),
]
MANAGERS = ["Иванов Иван", "Сидорова Мария", "Петров Олег", "Кузнецова Анна"]
INNS = ["7707083893", "7728168971", "500100732259", "7736050003", "7702070139", "7812014560"]


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class Walk:
    """What the generator of a deal needs: the world's stages and people."""

    rng: random.Random
    pipeline: Pipeline
    managers: list[Manager]
    reasons: list[LossReason]
    comment_ids: list[int] = field(default_factory=lambda: [1000])

    def stage(self, kind: str, index: int = 0) -> Stage:
        return [s for s in self.pipeline.stages if s.kind == kind][index]

    def next_comment_id(self) -> str:
        self.comment_ids[0] += 1
        return str(self.comment_ids[0])


def build_world(seed: int = 7, deals: int = 120, source_name: str = SOURCE) -> World:
    rng = random.Random(seed)
    managers = [
        Manager(
            key=f"m{i:02d}",
            name=name,
            email=f"user{i}@firma.ru",
            strengths={},
            user_ids={source_name: _guid(rng)},
            emails_by_source={source_name: f"User{i}@Firma.ru"},
            active={source_name: i != 4},
        )
        for i, name in enumerate(MANAGERS, start=1)
    ]
    managers.append(Manager("m09", "Без Учётки", "nobody@firma.ru", {}))  # no user in this site
    companies, contacts = [], []
    for i in range(1, 31):
        inn = INNS[i % len(INNS)] if i % 7 else None
        rendered = None if inn is None else (f"ИНН {inn}" if i % 5 == 0 else inn)
        created = START - timedelta(days=200 + i)
        company = Company(_guid(rng), source_name, f"ООО «Клиент {i}»", inn, rendered, f"c{i:04d}", created,
                          created + timedelta(days=3))  # fmt: skip
        for j in range(1 + i % 2):
            contact = Contact(_guid(rng), source_name, f"Контакт {i}-{j}", f"+7 900 000-{i:02d}-{j:02d}",
                              f"c{i}.{j}@client{i}.ru", company.id)  # fmt: skip
            company.contact_ids.append(contact.id)
            contacts.append(contact)
        companies.append(company)
    stages = [Stage(_guid(rng), name, kind, 10 * (n + 1), canonical)  # type: ignore[arg-type]
              for n, (name, kind, canonical) in enumerate(STAGES)]  # fmt: skip
    pipeline = Pipeline(_guid(rng), source_name, "Продажи", stages, sort=1, is_main=True)
    reasons = [
        LossReason(_guid(rng), source_name, name, code, START - timedelta(days=300)) for name, code in REASONS
    ]
    world = World(
        seed=seed,
        size=deals,
        now=START + timedelta(days=60),
        sources=[Source(source_name, "creatio")],
        managers=managers,
        companies=companies,
        contacts=contacts,
        pipelines=[pipeline],
        loss_reasons=reasons,
        deals=[],
        rates={},
    )
    walk = Walk(rng, pipeline, managers[:4], reasons)
    for n in range(deals):
        created = START + timedelta(minutes=int(rng.random() * 55 * 24 * 60))
        deal = new_deal(walk, world, created)
        play(walk, deal, world.now, steps=rng.randrange(1, 13))
        if n % 40 == 7:  # deleted in Creatio: gone with its stage rows
            deal.deleted_at = deal.updated_at + timedelta(hours=2)
            deal.updated_at = deal.deleted_at
        world.deals.append(deal)
    return world


def new_deal(walk: Walk, world: World, created: datetime) -> Deal:
    rng = walk.rng
    company = rng.choice(world.companies)
    manager = rng.choice(walk.managers)
    first = walk.pipeline.stages[1 if rng.random() < 0.15 else 0]
    return Deal(
        id=_guid(rng),
        source_name=world.sources[0].name,
        number="",
        name=f"Поставка {rng.choice(['станков', 'металла', 'упаковки', 'инструмента'])} №{rng.randrange(100, 999)}",
        pipeline_id=walk.pipeline.id,
        stage_id=first.id,
        manager_key=manager.key,
        company_id=company.id if rng.random() < 0.92 else None,
        contact_ids=company.contact_ids[:1],
        amount=Decimal(rng.randrange(10_000, 5_000_000)) / 100 * 100,
        currency="RUB",
        created_at=created,
        updated_at=created,
        closed_at=None,
        status="open",
        loss_reason_id=None,
        comments=[],
        moves=[Move(created, walk.pipeline.id, first.id, manager.key, manager.key)],
    )


def _move(walk: Walk, deal: Deal, at: datetime, stage: Stage, manager_key: str | None = None) -> None:
    key = manager_key or deal.manager_key
    deal.moves.append(Move(at, walk.pipeline.id, stage.id, key, key if walk.rng.random() < 0.9 else None))
    deal.stage_id, deal.manager_key, deal.updated_at = stage.id, key, at
    if stage.kind in ("won", "lost"):
        deal.status, deal.closed_at = ("won" if stage.kind == "won" else "lost"), at


def play(
    walk: Walk,
    deal: Deal,
    until: datetime,
    steps: int | None = None,
    since: datetime | None = None,
    max_gap_hours: int = 90,
) -> bool:
    """Move an open deal on until ``until`` (or for ``steps`` moves), its next move after
    its last one (and after ``since``); True when it moved."""
    rng = walk.rng
    process = [s for s in walk.pipeline.stages if s.kind == "process"]
    at = max(deal.moves[-1].at, since or deal.moves[-1].at)
    moved = False
    for _ in range(steps if steps is not None else 12):
        if deal.status != "open":
            break
        at = at + timedelta(hours=rng.randrange(1, max(2, max_gap_hours)), minutes=rng.randrange(60))
        if at >= until:
            break
        current = next(s for s in walk.pipeline.stages if s.id == deal.stage_id)
        roll = rng.random()
        if current.kind == "conditional_refusal":
            if roll < 0.3:  # back to work, with another manager
                other = rng.choice([m for m in walk.managers if m.key != deal.manager_key])
                _move(walk, deal, at, process[1], other.key)
            else:
                _lose(walk, deal, at)
        elif roll < 0.08:  # a new responsible, same stage
            other = rng.choice([m for m in walk.managers if m.key != deal.manager_key])
            _move(walk, deal, at, current, other.key)
        elif roll < 0.22:
            _move(walk, deal, at, walk.stage("conditional_refusal"))
        elif roll < 0.30:
            _lose(walk, deal, at)  # straight to lost: skips the conditional refusal
        elif roll < 0.38 and process.index(current) > 0:
            _move(walk, deal, at, process[process.index(current) - 1])  # a step back
        elif current is process[-1]:
            _move(walk, deal, at, walk.stage("won"))
        else:
            step = 2 if roll > 0.9 and process.index(current) < len(process) - 2 else 1
            _move(walk, deal, at, process[process.index(current) + step])
        moved = True
    return moved


def _lose(walk: Walk, deal: Deal, at: datetime) -> None:
    rng = walk.rng
    _move(walk, deal, at, walk.stage("lost", 1 if rng.random() < 0.2 else 0))
    deal.loss_reason_id = rng.choice(walk.reasons).id if rng.random() < 0.85 else None
    if rng.random() < 0.8:
        text = rng.choice(["Клиент выбрал другого поставщика, цена ниже на 10%", "Бюджет заморожен до осени",
                           "Не дозвонились три раза", "Дорого"])  # fmt: skip
        deal.comments.append(Comment(walk.next_comment_id(), at, deal.manager_key, text))


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def change_world(world: World, hours: float = 24, seed: int = 1) -> Changes:
    """A working day: some open deals move, one is edited, one is deleted, two are created.
    The clock moves ``hours`` on; every change happens inside the new period."""
    rng = random.Random(f"{world.seed}:{seed}:{world.now.isoformat()}")
    pipeline = world.pipelines[0]
    walk = Walk(rng, pipeline, [m for m in world.managers if world.sources[0].name in m.user_ids][:4],
                [r for r in world.loss_reasons])  # fmt: skip
    before, after = world.now, world.now + timedelta(hours=hours)
    changes = Changes()
    alive = [d for d in world.deals if d.deleted_at is None]
    open_deals = [d for d in alive if d.status == "open"]
    for deal in rng.sample(open_deals, min(len(open_deals), 4)):
        if play(walk, deal, after, steps=1, since=before, max_gap_hours=int(hours) - 1):
            changes.updated.append(deal.id)
    edited = next((d for d in alive if d.status == "open" and d.id not in changes.updated), None)
    if edited is not None:
        edited.amount += Decimal(1000)
        edited.updated_at = before + timedelta(hours=hours / 2)
        changes.updated.append(edited.id)
    gone = next(d for d in alive if d.id not in changes.updated)
    gone.deleted_at = gone.updated_at = before + timedelta(hours=hours / 3)
    changes.deleted.append(gone.id)
    for _ in range(2):
        deal = new_deal(walk, world, before + timedelta(minutes=rng.randrange(1, int(hours * 60))))
        world.deals.append(deal)
        changes.created.append(deal.id)
    world.now = after
    return changes
