"""``generate(seed, deals)``: the demo company's sales world, deterministic in its arguments.

A distribution company sells through amoCRM (retail), Bitrix24 (wholesale and tenders),
1C:УТ (key accounts), Megaplan (equipment and projects), Creatio (B2B), RosBiznesSoft (a
regional office) and a spreadsheet funnel exported to files. Ten managers and the head of sales; customers with INNs, some present
in two or three systems; deals created over the fourteen months before ``WORLD_NOW`` and
moved through each system's own pipelines. See sandbox/README.md for what is in it and the
deliberate defects.

Randomness comes from ``random.Random(seed)`` only; the clock is ``WORLD_NOW``, never the
machine's.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sandbox.world import vocabulary as vocab
from sandbox.world.layout import (
    AMO,
    B24,
    CREATIO,
    FILE,
    MEGAPLAN,
    ONEC,
    RBS,
    REASON_TRUE,
    SOURCE_SHARES,
    SYSTEMS,
    build_loss_reasons,
    build_pipelines,
    build_sources,
    guid,
    ladder_of,
)
from sandbox.world.model import Company, Contact, Deal, Manager, World
from sandbox.world.money import build_rates, moscow_date, rate_on
from sandbox.world.rules import WorldIndex, retag
from sandbox.world.simulate import DAY, HOUR, PIPELINE_WEIGHTS, Book, Simulator, to_ts

UTC = UTC
WORLD_NOW = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
HISTORY_DAYS = 425  # deals are created over the ~14 months before WORLD_NOW
DEACTIVATED_DAYS_AGO = 200  # managers inactive in a system left it this long before WORLD_NOW
COMPANY_DOMAIN = "td-vektor.ru"
WORKDAY_START_UTC_HOUR = 6  # 09:00 Moscow
WORKDAY_HOURS = 10

# key, surname, first name, female, systems, systems where deactivated, fixed strengths
TEAM: list[tuple[str, str, str, bool, tuple[str, ...], tuple[str, ...], dict[str, float] | None]] = [
    ("m01", "Иванов", "Иван", False, (AMO, B24, RBS), (), {"new": 0.80, "contact": 0.70, "proposal": 0.85, "contract": 0.955}),
    ("m02", "Сидоров", "Пётр", False, (AMO, ONEC, CREATIO), (), {"new": 0.955, "contact": 0.90, "proposal": 0.70, "contract": 0.80}),
    ("m03", "Петрова", "Анна", True, (AMO, MEGAPLAN, FILE), (), None),
    ("m04", "Смирнова", "Мария", True, (AMO, B24, FILE), (AMO,), None),
    ("m05", "Кузнецов", "Алексей", False, (B24, CREATIO), (), None),
    ("m06", "Попова", "Елена", True, (B24, ONEC, RBS), (), None),
    ("m07", "Васильев", "Дмитрий", False, (B24, MEGAPLAN, FILE), (), None),
    ("m08", "Новикова", "Ольга", True, (ONEC, CREATIO), (), None),
    ("m09", "Морозов", "Сергей", False, (ONEC, AMO, RBS), (ONEC,), None),
    ("m10", "Волкова", "Татьяна", True, (AMO, B24, MEGAPLAN), (MEGAPLAN,), None),
]  # fmt: skip
HEAD_OF_SALES = ("m00", "Соколова", "Ирина", True, tuple(SYSTEMS))
# a manager whose e-mail in one system is not the company one (only funnel.yaml's people
# section ties the accounts together)
PRIVATE_EMAILS = {("m06", ONEC): "lena.popova@mail.ru"}


def generate(seed: int, deals: int, now: datetime = WORLD_NOW, history_days: int = HISTORY_DAYS) -> World:
    """Build the world: same arguments, same world."""
    world, stream = generate_stream(seed, deals, now, history_days)
    with gc_paused():
        world.deals.extend(stream)
    return world


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building millions of acyclic objects, its full
    passes over the growing heap would take half the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def generate_stream(
    seed: int, deals: int, now: datetime = WORLD_NOW, history_days: int = HISTORY_DAYS
) -> tuple[World, Iterator[Deal]]:
    """The world without its deals, and the deals one by one in creation order (the same
    deals ``generate`` would hold). For writing the truth of a very large world without
    keeping every deal in memory; the iterator must be consumed before the world is used."""
    if deals < 1:
        raise ValueError(f"deals must be at least 1, got {deals}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    rng = random.Random(seed)
    start = now - timedelta(days=history_days)
    pipelines = build_pipelines(rng)
    loss_reasons = build_loss_reasons(rng, start - timedelta(days=400))
    managers = build_team(rng)
    rates = build_rates(rng, moscow_date(start) - timedelta(days=30), moscow_date(now))
    world = World(
        seed=seed,
        size=deals,
        now=now,
        sources=build_sources(),
        managers=managers,
        companies=[],
        contacts=[],
        pipelines=pipelines,
        loss_reasons=loss_reasons,
        deals=[],
        rates=rates,
    )
    build_customers(rng, world, deals, start)
    deactivated = {
        (source, m.key): to_ts(now) - DEACTIVATED_DAYS_AGO * DAY
        for m in managers
        for source, active in m.active.items()
        if not active
    }
    books = build_books(world, deactivated, first_ids=True)
    sim = Simulator(rng, lambda c, moment: rate_on(world.rates, c, moment), to_ts(now))
    index = WorldIndex(world)

    def stream() -> Iterator[Deal]:
        names = list(SOURCE_SHARES)
        cum_weights = _cumulative([SOURCE_SHARES[n] for n in names])
        for created_ts in spread(rng, deals, working_segments(to_ts(start), to_ts(now))):
            source = rng.choices(names, cum_weights=cum_weights)[0]
            deal = sim.new_deal(books[source], created_ts)
            retag(index, deal)
            yield deal

    return world, stream()


# -- the team ----------------------------------------------------------------------------
def build_team(rng: random.Random) -> list[Manager]:
    amo_ids: set[int] = set()
    b24_next = 7
    counters = {MEGAPLAN: 1_000_001, RBS: 11}  # Megaplan employee ids, RosBiznesSoft user ids
    managers = []
    rows = [(*row[:6], row[6]) for row in TEAM] + [(*HEAD_OF_SALES, (), {})]
    for key, surname, first, _female, systems, inactive_in, fixed in rows:
        local = f"{vocab.translit(first)[0]}.{vocab.translit(surname)}"
        email = f"{local}@{COMPANY_DOMAIN}"
        if fixed is None:
            strengths = {
                "new": round(rng.uniform(0.78, 0.97), 2),
                "contact": round(rng.uniform(0.60, 0.90), 2),
                "proposal": round(rng.uniform(0.55, 0.88), 2),
                "contract": round(rng.uniform(0.70, 0.96), 2),
            }
        else:
            strengths = dict(fixed)  # the head of sales: {} — owns no deals
        manager = Manager(key=key, name=f"{surname} {first}", email=email, strengths=strengths)
        for source in systems:
            if source == AMO:
                uid = rng.randrange(11_120_000, 11_130_000)
                while uid in amo_ids:
                    uid += 1
                amo_ids.add(uid)
                manager.user_ids[source] = str(uid)
                spelt = ".".join(part.capitalize() for part in local.split(".")) + f"@{COMPANY_DOMAIN}"
            elif source == B24:
                manager.user_ids[source] = "1" if key == HEAD_OF_SALES[0] else str(b24_next)
                b24_next += rng.randrange(1, 4) if key != HEAD_OF_SALES[0] else 0
                spelt = email
            elif source in counters:
                manager.user_ids[source] = str(counters[source])
                counters[source] += 1
                spelt = email.upper() if source == MEGAPLAN and rng.random() < 0.3 else email
            elif source == FILE:  # an export shows the manager's name, nothing else
                manager.user_ids[source] = manager.name
                spelt = email
            else:  # 1C and Creatio: GUIDs
                manager.user_ids[source] = guid(rng)
                spelt = email.upper() if rng.random() < 0.5 else email
            manager.emails_by_source[source] = PRIVATE_EMAILS.get((key, source), spelt)
            manager.active[source] = source not in inactive_in
        managers.append(manager)
    return managers


# -- customers -----------------------------------------------------------------------------
P_MULTI_SYSTEM = 0.30
P_NO_INN = 0.03  # the customer's INN is written nowhere
P_IMPOSSIBLE_INN = 0.02  # an INN with a wrong check digit, in every system
P_INN_MISSING_HERE = 0.03  # one system lacks the INN the others have
P_INN_TYPO_HERE = 0.015  # one system has a typo in it
P_INDIVIDUAL = 0.10  # sole proprietors: 12-digit INN
INN_STYLES = {
    AMO: (("plain", 0.60), ("prefixed", 0.25), ("spaced", 0.15)),
    B24: (("plain", 0.75), ("spaced", 0.25)),
    ONEC: (("plain", 1.0),),
    MEGAPLAN: (("plain", 0.60), ("prefixed", 0.20), ("spaced", 0.20)),
    CREATIO: (("plain", 0.85), ("prefixed", 0.15)),
    RBS: (("plain", 1.0),),
    FILE: (("plain", 0.80), ("spaced", 0.20)),
}
PHONE_STYLE = {AMO: 0, B24: 1, ONEC: 2, MEGAPLAN: 1, CREATIO: 1, RBS: 2, FILE: 0}


class _Ids:
    def __init__(self) -> None:
        self.company = {AMO: 40_000_001, B24: 1, MEGAPLAN: 2_000_001, RBS: 101, FILE: 1}
        self.contact = {AMO: 50_000_001, B24: 1, MEGAPLAN: 3_000_001, RBS: 3001, FILE: 1}

    def next(self, kind: str, source: str, rng: random.Random) -> str:
        if source in (ONEC, CREATIO):
            return guid(rng)
        counters = self.company if kind == "company" else self.contact
        value = counters[source]
        counters[source] += 1 + (rng.random() < 0.05) * rng.randrange(1, 5)
        return str(value)


def build_customers(rng: random.Random, world: World, deals: int, start: datetime) -> None:
    ids = _Ids()
    file_names: set[str] = set()  # a file names a customer by its name: one name, one customer
    names = list(SOURCE_SHARES)
    weights = [SOURCE_SHARES[n] for n in names]
    for number in range(1, max(30, deals // 4) + 1):
        customer_key = f"c{number:05d}"
        individual = rng.random() < P_INDIVIDUAL
        person = vocab.person_name(rng)
        if individual:
            official = f"ИП {person[0]} {person[1][0]}. {person[2][0]}."
            short = official
            domain = rng.choice(["mail.ru", "yandex.ru", "gmail.com"])
        else:
            root = rng.choice(vocab.COMPANY_ROOTS) + rng.choice(vocab.COMPANY_TAILS)
            form = rng.choice(vocab.LEGAL_FORMS)
            official, short = f"{form} «{root}»", root
            domain = f"{vocab.translit(root)}.ru"
        roll = rng.random()
        inn: str | None = None if roll < P_NO_INN else vocab.make_inn(rng, individual)
        impossible = P_NO_INN <= roll < P_NO_INN + P_IMPOSSIBLE_INN
        written = vocab.break_inn(inn) if impossible and inn else inn
        home = rng.choices(names, weights)[0]
        systems = [home]
        if rng.random() < P_MULTI_SYSTEM:
            others = [n for n in names if n != home]
            systems += others if rng.random() < 0.25 else [rng.choice(others)]
        people = [vocab.person_name(rng) for _ in range(rng.choices([1, 2, 3], [0.7, 0.25, 0.05])[0])]
        phones = [vocab.phone(rng) for _ in people]
        created = start - timedelta(seconds=rng.randrange(30 * DAY, 900 * DAY))
        for source in systems:
            company_id = ids.next("company", source, rng)
            rendered: str | None = written
            if written is not None:
                roll_here = rng.random()
                if roll_here < P_INN_MISSING_HERE:
                    rendered = None
                elif roll_here < P_INN_MISSING_HERE + P_INN_TYPO_HERE:
                    rendered = vocab.break_inn(written) if not impossible else written
                if rendered is not None:
                    styles = INN_STYLES[source]
                    style = rng.choices([s for s, _ in styles], [w for _, w in styles])[0]
                    rendered = vocab.render_inn(rendered, style)
            name = official
            if source == AMO and not individual and rng.random() < 0.3:
                name = short
            elif source == B24 and not individual and rng.random() < 0.4:
                name = official.replace("«", '"').replace("»", '"')
            if source == FILE:
                base, n = name, 1
                while name in file_names:
                    n += 1
                    name = f"{base} ({n})"
                file_names.add(name)
                company_id = name
            company = Company(
                id=company_id,
                source_name=source,
                name=name,
                inn_canonical=None if impossible else inn,
                inn_rendered=rendered,
                customer_key=customer_key,
                created_at=created,
                updated_at=created + timedelta(seconds=rng.randrange(0, 20 * DAY)),
            )
            for (surname, first, patronymic), number_ in zip(people, phones, strict=True):
                contact = Contact(
                    id=ids.next("contact", source, rng),
                    source_name=source,
                    name=f"{surname} {first} {patronymic}" if source != AMO else f"{first} {surname}",
                    phone=vocab.format_phone(number_, PHONE_STYLE[source]),
                    email=f"{vocab.translit(first)[0]}.{vocab.translit(surname)}@{domain}",
                    company_id=company_id,
                )
                company.contact_ids.append(contact.id)
                world.contacts.append(contact)
            world.companies.append(company)
    # private buyers in amoCRM: a contact and no company
    for _ in range(max(5, int(deals * SOURCE_SHARES[AMO] * 0.05))):
        surname, first, _ = vocab.person_name(rng)
        world.contacts.append(
            Contact(
                id=ids.next("contact", AMO, rng),
                source_name=AMO,
                name=f"{first} {surname}",
                phone=vocab.phone(rng),
                email=f"{vocab.translit(first)}{rng.randrange(10, 99)}@{rng.choice(['mail.ru', 'yandex.ru'])}",
                company_id=None,
            )
        )


# -- what the simulator needs per source ----------------------------------------------------
# system -> the first deal id (or code number) and the first comment id
FIRST_IDS = {
    "amocrm": (30_000_001, 900_000_001),
    "bitrix24": (1, 1001),
    "onec": (1, 1),
    "megaplan": (5001, 7_000_001),
    "creatio": (1, 1),
    "rosbiznessoft": (1, 1),
    "file": (10_001, 1),
}


def build_books(
    world: World, deactivated: dict[tuple[str, str], int], first_ids: bool = False
) -> dict[str, Book]:
    """Per source: pipelines, managers, customers, reasons and the next free ids. With
    ``first_ids`` the counters start at each system's first id; otherwise they continue after
    the highest id in the world."""
    books: dict[str, Book] = {}
    for source in world.sources:
        name = source.name
        ladders = [ladder_of(p) for p in world.pipelines if p.source_name == name]
        managers = [m for m in world.managers if name in m.user_ids and m.strengths]
        reviewer = next((m for m in world.managers if name in m.user_ids and not m.strengths), None)
        reasons: dict[str, list] = {}
        for reason in world.loss_reasons:
            if reason.source_name == name:
                reasons.setdefault(REASON_TRUE[(name, reason.name)], []).append(reason)
        unknown_true = [t for t, rs in reasons.items() if all(r.canonical is None for r in rs)]
        if first_ids:
            next_deal, next_comment = FIRST_IDS[source.system]
        else:
            own = [d for d in world.deals if d.source_name == name]
            if source.system == "creatio":  # GUIDs only
                next_deal = 1
            elif source.system in ("onec", "rosbiznessoft"):  # the number after the deal's code
                next_deal = 1 + max((int(d.number.split("-")[-1]) for d in own), default=0)
            else:
                next_deal = 1 + max((int(d.id) for d in own), default=0)
            next_comment = 1 + max((int(c.id) for d in own for c in d.comments if c.id.isdigit()), default=0)
        books[name] = Book(
            source=source,
            ladders=ladders,
            ladder_weights=[PIPELINE_WEIGHTS.get(lad.pipeline.name, 1.0) for lad in ladders],
            managers=managers,
            deactivated_at={key: ts for (src, key), ts in deactivated.items() if src == name},
            reviewer=reviewer,
            companies=[c for c in world.companies if c.source_name == name],
            loose_contacts=[c for c in world.contacts if c.source_name == name and c.company_id is None],
            reasons=reasons,
            unknown_true=unknown_true,
            next_deal=next_deal,
            next_comment=next_comment,
        )
    return books


# -- when deals are created -----------------------------------------------------------------
def working_segments(start_ts: int, end_ts: int) -> list[tuple[int, int]]:
    """Working hours (Mon-Fri, 09:00-19:00 Moscow) inside [start_ts, end_ts); the whole span
    when it holds none."""
    segments = []
    day = datetime.fromtimestamp(start_ts, UTC).replace(hour=0, minute=0, second=0)
    while to_ts(day) < end_ts:
        if day.weekday() < 5:
            lo = max(start_ts, to_ts(day) + WORKDAY_START_UTC_HOUR * HOUR)
            hi = min(end_ts, to_ts(day) + (WORKDAY_START_UTC_HOUR + WORKDAY_HOURS) * HOUR)
            if hi > lo:
                segments.append((lo, hi))
        day += timedelta(days=1)
    return segments or [(start_ts, end_ts)]


def spread(rng: random.Random, n: int, segments: list[tuple[int, int]]) -> Iterator[int]:
    """``n`` increasing moments spread evenly over the segments (one per stratum)."""
    total = sum(hi - lo for lo, hi in segments)
    seg, offset = 0, 0  # offset: working seconds before segments[seg]
    for k in range(n):
        x = int(total * (k + rng.random()) / n)
        while x >= offset + (segments[seg][1] - segments[seg][0]):
            offset += segments[seg][1] - segments[seg][0]
            seg += 1
        yield segments[seg][0] + (x - offset)


def _cumulative(weights: list[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out
