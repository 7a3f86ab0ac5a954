"""Time moves on: ``advance(world, days, seed)`` moves the world's clock and changes the world
the way a working week changes a CRM, then says what changed (for incremental extraction
tests). The same world and seed give the same change.

In order: rates are extended to the new day; open deals move on (a deal whose next move
was already due sits stuck and moves only with probability days/60); some open deals are
edited (amount or name); a few existing deals are deleted; new deals are created over the
working hours of the new period.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sandbox.world.generate import build_books, gc_paused, spread, working_segments
from sandbox.world.layout import SOURCE_SHARES, ladders_of
from sandbox.world.model import Deal, World
from sandbox.world.money import extend_rates, moscow_date, rate_on
from sandbox.world.rules import WorldIndex, retag
from sandbox.world.simulate import DAY, Simulator, to_dt, to_ts

P_EDIT_PER_WEEK = 0.03  # of open deals: amount or name edited
P_DELETE_PER_DAY = 0.0002  # of existing deals
OVERDUE_DAYS = 60  # a stuck deal moves on with probability days / OVERDUE_DAYS


@dataclass
class ChangeSet:
    """Deal ids per source name. A deal is in at most one of the three."""

    before: datetime
    after: datetime
    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)  # moved, closed, commented or edited
    deleted: dict[str, list[str]] = field(default_factory=dict)

    def ids(self, source_name: str) -> set[str]:
        return {
            *self.created.get(source_name, []),
            *self.updated.get(source_name, []),
            *self.deleted.get(source_name, []),
        }

    @property
    def total(self) -> int:
        return sum(len(v) for part in (self.created, self.updated, self.deleted) for v in part.values())


def advance(world: World, days: float, seed: int) -> ChangeSet:
    """Move ``world`` forward by ``days`` (in place) and return what changed."""
    with gc_paused():
        return _advance(world, days, seed)


def _advance(world: World, days: float, seed: int) -> ChangeSet:
    if days <= 0:
        raise ValueError(f"days must be positive, got {days}")
    rng = random.Random(f"advance:{world.seed}:{seed}:{world.now.isoformat()}:{days}")
    before, after = world.now, world.now + timedelta(days=days)
    floor, horizon = to_ts(before), to_ts(after)
    extend_rates(rng, world.rates, moscow_date(after))
    deactivated = {(s, m.key): 0 for m in world.managers for s, active in m.active.items() if not active}
    books = build_books(world, deactivated)
    sim = Simulator(rng, lambda c, moment: rate_on(world.rates, c, moment), horizon)
    ladders = ladders_of(world)
    index = WorldIndex(world)
    changes = ChangeSet(before, after)
    updated: dict[str, set[str]] = {}
    existing = list(world.deals)

    p_overdue = min(1.0, days / OVERDUE_DAYS)
    for deal in existing:
        if deal.status != "open" or deal.deleted_at is not None:
            continue
        ladder = ladders[(deal.source_name, deal.pipeline_id)]
        if sim.resume(books[deal.source_name], deal, ladder, floor, p_overdue):
            retag(index, deal)
            updated.setdefault(deal.source_name, set()).add(deal.id)

    p_edit = min(1.0, P_EDIT_PER_WEEK * days / 7)
    for deal in existing:
        if deal.status == "open" and deal.deleted_at is None and rng.random() < p_edit:
            _edit(rng, deal, floor, horizon)
            updated.setdefault(deal.source_name, set()).add(deal.id)

    alive = [
        d
        for d in existing
        if d.deleted_at is None and to_ts(d.updated_at) < horizon and books[d.source_name].deletes
    ]
    for deal in rng.sample(alive, min(len(alive), max(1, round(len(existing) * P_DELETE_PER_DAY * days)))):
        sim.delete(deal, max(floor, to_ts(deal.updated_at)), horizon)
        if deal.deleted_at is not None:
            changes.deleted.setdefault(deal.source_name, []).append(deal.id)
            updated.get(deal.source_name, set()).discard(deal.id)

    names = [n for n in SOURCE_SHARES if n in books]  # the world's own sources
    weights = [SOURCE_SHARES[n] for n in names]
    first = min(d.created_at for d in existing) if existing else before - timedelta(days=365)
    per_day = len(existing) / max(1.0, (before - first).total_seconds() / DAY)
    count = _poisson(rng, per_day * days)
    for created_ts in spread(rng, count, working_segments(floor + 1, horizon)):
        source = rng.choices(names, weights)[0]
        deal = sim.new_deal(books[source], created_ts, may_delete=False)
        retag(index, deal)
        world.deals.append(deal)
        changes.created.setdefault(source, []).append(deal.id)

    for source, ids in updated.items():
        order = {d.id: i for i, d in enumerate(existing) if d.source_name == source and d.id in ids}
        changes.updated[source] = sorted(ids, key=order.__getitem__)
    world.now = after
    return changes


def _edit(rng: random.Random, deal: Deal, floor: int, horizon: int) -> None:
    since = max(floor, to_ts(deal.updated_at))
    at = min(horizon, since + 1 + int(rng.random() * max(1, horizon - since - 1)))
    if rng.random() < 0.7:
        factor = Decimal(str(round(rng.uniform(0.8, 1.3), 2)))
        exponent = int(deal.amount.as_tuple().exponent)
        deal.amount = (deal.amount * factor).quantize(Decimal(1).scaleb(exponent))
    else:
        suffix = " (доп. объём)"
        deal.name = deal.name[: -len(suffix)] if deal.name.endswith(suffix) else deal.name + suffix
    deal.updated_at = to_dt(at)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (normal approximation for large means)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, mean**0.5)))
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
