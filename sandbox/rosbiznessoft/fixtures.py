"""Small RosBiznesSoft worlds built by hand, for the stand-in's and the extractor's tests (the
demo world comes from ``sandbox.world.generate``).

``build_world`` makes one installation with two deal types (pipelines), each with its own
stages, and every case the stand-in renders: deals that skip stages, step back, pass the
conditional refusal and come back with another manager, change hands, close won and lost
(with and without a reason and a comment), deals moved to the bin (``visible`` 0) and
customers with and without an INN. ``change_world`` moves it on like a working day does.
Every id is numeric, as in RosBiznesSoft.
"""

from __future__ import annotations

import itertools
import random
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

SOURCE = "rbs"
START = datetime(2025, 2, 3, 6, 0, tzinfo=UTC)
PIPELINES = {  # name -> stages (name, kind, canonical)
    "Продажи": [
        ("Новая заявка", "process", "new"),
        ("Выявление потребности", "process", "contact"),
        ("Коммерческое предложение", "process", "proposal"),
        ("Согласование договора", "process", "contract"),
        ("Условный отказ", "conditional_refusal", None),
        ("Успешно реализовано", "won", None),
        ("Закрыто и не реализовано", "lost", None),
    ],
    "Тендеры": [
        ("Подготовка заявки", "process", "new"),
        ("Заявка подана", "process", "proposal"),
        ("Выигран", "won", None),
        ("Проигран", "lost", None),
    ],
}
REASONS = [
    ("Нет бюджета", "no_budget"),
    ("Выбрали другого поставщика", "other_supplier"),
    ("Высокая цена", "high_price"),
    ("Закупка не запланирована", "not_planned"),
    ("Пропал клиент", None),
]
MANAGERS = ["Орлова Светлана", "Гусев Павел", "Никитин Роман", "Белова Ирина"]
INNS = ["7707083893", "7728168971", "500100732259", "7736050003", "7702070139", "7812014560"]
COMMENTS = ["Клиент ушёл к конкуренту, у них дешевле на 12%", "Бюджет урезали до конца года",
            "Три раза не дозвонились, на письма не отвечает", "Дорого"]  # fmt: skip


@dataclass
class Walk:
    rng: random.Random
    world: World
    managers: list[Manager]
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> str:
        return str(next(self.ids))

    def pipeline(self, deal: Deal) -> Pipeline:
        return next(p for p in self.world.pipelines if p.id == deal.pipeline_id)


def build_world(seed: int = 7, deals: int = 150, source_name: str = SOURCE) -> World:
    rng = random.Random(seed)
    managers = [
        Manager(
            key=f"m{i:02d}",
            name=name,
            email=f"manager{i}@firma.ru",
            strengths={},
            user_ids={source_name: str(10 + i)},
            emails_by_source={source_name: f"Manager{i}@Firma.ru"},
            active={source_name: i != 4},
        )  # fmt: skip
        for i, name in enumerate(MANAGERS, start=1)
    ]
    managers.append(Manager("m09", "Без Учётки", "nobody@firma.ru", {}))  # no user in this installation
    companies, contacts = [], []
    for i in range(1, 41):
        inn = INNS[i % len(INNS)] if i % 6 else None
        rendered = None if inn is None else (f"ИНН {inn}" if i % 5 == 0 else inn)
        created = START - timedelta(days=300 - i)
        company = Company(str(100 + i), source_name, f"ООО «Заказчик {i}»", inn, rendered, f"c{i:04d}", created,
                          created + timedelta(days=i % 9))  # fmt: skip
        contact = Contact(str(3000 + i), source_name, f"Контакт {i}", f"+7 900 100-{i:02d}-00", f"c{i}@z{i}.ru",
                          company.id)  # fmt: skip
        company.contact_ids.append(contact.id)
        companies.append(company)
        contacts.append(contact)
    pipelines, stage_id = [], itertools.count(1)
    for p_index, (name, stages) in enumerate(PIPELINES.items(), start=1):
        pipelines.append(Pipeline(str(p_index), source_name, name,
                                  [Stage(str(next(stage_id)), s, kind, 10 * (n + 1), canonical)  # type: ignore[arg-type]
                                   for n, (s, kind, canonical) in enumerate(stages)],
                                  sort=p_index, is_main=p_index == 1))  # fmt: skip
    reasons = [LossReason(str(i), source_name, name, code, START - timedelta(days=400))
               for i, (name, code) in enumerate(REASONS, start=1)]  # fmt: skip
    world = World(seed=seed, size=deals, now=START + timedelta(days=60), sources=[Source(source_name, "rosbiznessoft")],
                  managers=managers, companies=companies, contacts=contacts, pipelines=pipelines,
                  loss_reasons=reasons, deals=[], rates={})  # fmt: skip
    walk = Walk(rng, world, managers[:4], itertools.count(5001))
    for n in range(deals):
        created = START + timedelta(minutes=int(rng.random() * 55 * 24 * 60))
        deal = new_deal(walk, created, number=n + 1)
        play(walk, deal, world.now, steps=rng.randrange(1, 11))
        if n % 37 == 5:  # moved to the bin
            deal.deleted_at = deal.updated_at + timedelta(hours=3)
            deal.updated_at = deal.deleted_at
        world.deals.append(deal)
    return world


def new_deal(walk: Walk, created: datetime, number: int) -> Deal:
    rng = walk.rng
    pipeline = walk.world.pipelines[0 if rng.random() < 0.75 else 1]
    manager = rng.choice(walk.managers)
    company = rng.choice(walk.world.companies)
    first = pipeline.stages[0]
    return Deal(
        id=str(number), source_name=walk.world.sources[0].name, number=f"С-{number:05d}",
        name=f"Поставка {rng.choice(['станков', 'металла', 'упаковки', 'инструмента'])} №{rng.randrange(100, 999)}",
        pipeline_id=pipeline.id, stage_id=first.id, manager_key=manager.key,
        company_id=company.id if rng.random() < 0.9 else None, contact_ids=company.contact_ids[:1],
        amount=Decimal(rng.randrange(1_000, 900_000)) * 10 + Decimal(rng.choice(["0", "0.5", "0.99"])),
        currency="RUB" if rng.random() < 0.9 else "USD", created_at=created, updated_at=created, closed_at=None,
        status="open", loss_reason_id=None, comments=[], moves=[Move(created, pipeline.id, first.id, manager.key)],
    )  # fmt: skip


def _move(walk: Walk, deal: Deal, at: datetime, stage: Stage, manager_key: str | None = None) -> None:
    key = manager_key or deal.manager_key
    deal.moves.append(Move(at, deal.pipeline_id, stage.id, key, key))
    deal.stage_id, deal.manager_key, deal.updated_at = stage.id, key, at
    if stage.kind in ("won", "lost"):
        deal.status, deal.closed_at = ("won" if stage.kind == "won" else "lost"), at


def _lose(walk: Walk, deal: Deal, at: datetime) -> None:
    rng = walk.rng
    lost = next(s for s in walk.pipeline(deal).stages if s.kind == "lost")
    _move(walk, deal, at, lost)
    deal.loss_reason_id = rng.choice(walk.world.loss_reasons).id if rng.random() < 0.85 else None
    if rng.random() < 0.8:
        deal.comments.append(
            Comment(walk.next_id(), at + timedelta(minutes=2), deal.manager_key, rng.choice(COMMENTS))
        )


def play(walk: Walk, deal: Deal, until: datetime, steps: int = 12, since: datetime | None = None,
         max_gap_hours: int = 90) -> bool:  # fmt: skip
    """Move an open deal on (at most ``steps`` moves, each before ``until``); True when it moved."""
    rng = walk.rng
    stages = walk.pipeline(deal).stages
    process = [s for s in stages if s.kind == "process"]
    refusal = next((s for s in stages if s.kind == "conditional_refusal"), None)
    at = max(deal.moves[-1].at, since or deal.moves[-1].at)
    moved = False
    for _ in range(steps):
        if deal.status != "open":
            break
        at = at + timedelta(hours=rng.randrange(1, max(2, max_gap_hours)), minutes=rng.randrange(60))
        if at >= until:
            break
        current = next(s for s in stages if s.id == deal.stage_id)
        roll = rng.random()
        if current.kind == "conditional_refusal":
            if roll < 0.3:  # back to work with another manager
                other = rng.choice([m for m in walk.managers if m.key != deal.manager_key])
                _move(walk, deal, at, process[1], other.key)
            else:
                _lose(walk, deal, at)
        elif roll < 0.08:  # a new responsible, same stage
            other = rng.choice([m for m in walk.managers if m.key != deal.manager_key])
            _move(walk, deal, at, current, other.key)
        elif roll < 0.2 and refusal is not None:
            _move(walk, deal, at, refusal)
        elif roll < 0.3:
            _lose(walk, deal, at)
        elif roll < 0.37 and process.index(current) > 0:
            _move(walk, deal, at, process[process.index(current) - 1])
        elif current is process[-1]:
            _move(walk, deal, at, next(s for s in stages if s.kind == "won"))
        else:
            step = 2 if roll > 0.9 and process.index(current) < len(process) - 2 else 1
            _move(walk, deal, at, process[process.index(current) + step])
        moved = True
    return moved


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def change_world(world: World, hours: float = 24, seed: int = 1) -> Changes:
    """A working day: some open deals move, one is edited, one is moved to the bin, two are
    created, one company gets its INN. The clock moves ``hours`` on; every change is inside."""
    rng = random.Random(f"{world.seed}:{seed}:{world.now.isoformat()}")
    source = world.sources[0].name
    last_id = max(int(x) for d in world.deals for x in [d.id] + [c.id for c in d.comments])
    walk = Walk(
        rng, world, [m for m in world.managers if source in m.user_ids][:4], itertools.count(last_id + 1)
    )
    before, after = world.now, world.now + timedelta(hours=hours)
    changes = Changes()
    alive = [d for d in world.deals if d.deleted_at is None]
    for deal in rng.sample([d for d in alive if d.status == "open"], 4):
        if play(walk, deal, after, steps=1, since=before, max_gap_hours=int(hours) - 1):
            changes.updated.append(deal.id)
    edited = next(d for d in alive if d.status == "open" and d.id not in changes.updated)
    edited.amount += Decimal(1000)
    edited.updated_at = before + timedelta(hours=hours / 2)
    changes.updated.append(edited.id)
    gone = next(d for d in alive if d.id not in changes.updated)
    gone.deleted_at = gone.updated_at = before + timedelta(hours=hours / 3)
    changes.deleted.append(gone.id)
    for _ in range(2):
        deal = new_deal(
            walk, before + timedelta(minutes=rng.randrange(1, int(hours * 60))), number=int(walk.next_id())
        )
        world.deals.append(deal)
        changes.created.append(deal.id)
    company = next((c for c in world.companies if c.inn_canonical is None), None)
    if company is not None:
        company.inn_canonical = company.inn_rendered = "7705001234"
        company.updated_at = before + timedelta(hours=hours / 4)
    world.now = after
    return changes
