"""Moving a sandbox world on until a given share of its deals changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sandbox.world.advance import advance
from sandbox.world.model import World


@dataclass
class Change:
    before: datetime
    days: float
    ids: dict[str, set[str]] = field(default_factory=dict)  # source name -> deals created, updated, deleted

    @property
    def changed(self) -> int:
        return sum(len(v) for v in self.ids.values())

    def in_source(self, source_name: str) -> int:
        return len(self.ids.get(source_name, ()))


def advance_by_share(world: World, share: float, seed: int, max_steps: int = 8) -> Change:
    """Advance ``world`` (in place) in steps until at least ``share`` of its deals were created,
    updated or deleted; the first step is one day, later ones sized from the rate seen."""
    change = Change(before=world.now, days=0.0)
    target = share * len(world.deals)
    days = 1.0
    for step in range(max_steps):
        got = advance(world, days, seed=seed * 1000 + step)
        change.days += days
        for source in {*got.created, *got.updated, *got.deleted}:
            change.ids.setdefault(source, set()).update(got.ids(source))
        if change.changed >= target:
            break
        per_day = max(change.changed / change.days, 1.0)
        days = max(0.25, round((target - change.changed) / per_day * 1.05, 2))
    return change
