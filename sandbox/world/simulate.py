"""How one deal lives: created in a stage, moved on by its manager level by level with the
manager's strengths, sometimes back, sometimes into the other pipeline, and closed won or lost
(through the conditional refusal where the pipeline has one) — or left open when the world's
clock stops first.

The same engine creates deals (``Simulator.new_deal``) and moves open deals on when time
advances (``Simulator.resume``). All randomness comes from the ``random.Random`` given.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandbox.world import vocabulary as vocab
from sandbox.world.layout import LEVELS, STAGE_REASON_CANONICAL, STAGE_REASON_TRUE, Ladder, guid
from sandbox.world.model import Comment, Company, Contact, Deal, LossReason, Manager, Move, Source, Stage

UTC = UTC
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE, HOUR, DAY = 60, 3600, 86400


def to_ts(moment: datetime) -> int:
    return int(moment.timestamp())


def to_dt(ts: int) -> datetime:
    return EPOCH + timedelta(seconds=ts)


# -- the rates the world is generated with (documented in sandbox/README.md) --------------
P_FAST_LOSS = 0.02  # of new deals: closed lost minutes after creation
P_REFUSAL = 0.80  # of losses in a pipeline with a conditional refusal stage: go through it
P_REFUSAL_RETURN = 0.15  # of deals in the conditional refusal: handed back to work
P_MISSING_REASON = 0.07  # of losses: no reason picked
P_UNKNOWN_REASON = 0.06  # of losses: a reason the demo mapping does not know
P_MISSING_COMMENT = 0.09  # of losses: no comment or a few characters
P_MISSING_COMMENT_OTHER_SUPPLIER = 0.40  # ... when the reason is "another supplier"
P_STALE = 0.07  # of failures: the deal is simply left open
P_BACKWARD = 0.06  # of successes past the first level: a step back first
P_SWITCH_PIPELINE = 0.04  # of successes past the first level (amoCRM, Bitrix24)
P_SKIP_LEVEL = 0.05  # a canonical level skipped altogether
P_UNMAPPED_VISIT = 0.45  # a deal passing a level with an unmapped stage visits it
P_STAGE_VISIT = 0.55  # ... and each further mapped stage of a level
P_DELETED = 0.012
P_ONEC_EMPTY_REFS = 0.03  # of 1C deals
P_ONEC_EMPTY_DATES = 0.05  # of 1C deals with at least two stage rows
P_DUPLICATED_EVENT = 0.02  # of amoCRM deals with at least one status change
MIN_ORDINARY_LOSS_MINUTES = 35  # ordinary losses are never "too fast"

DWELL_MEDIAN_HOURS = (3.0, 30.0, 70.0, 110.0)  # by level
REFUSAL_MEDIAN_HOURS = 40.0
DWELL_SIGMA = 1.1
MAX_DWELL = 75 * DAY

LOSS_WEIGHTS_EARLY = {
    "no_budget": 20, "other_supplier": 15, "high_price": 8, "not_planned": 15, "not_fit": 10,
    "not_interested": 25, "delivery_terms": 4, "other": 3,
}  # fmt: skip
LOSS_WEIGHTS_LATE = {
    "no_budget": 12, "other_supplier": 20, "high_price": 30, "not_planned": 6, "not_fit": 10,
    "not_interested": 5, "delivery_terms": 14, "other": 3,
}  # fmt: skip

PIPELINE_WEIGHTS = {
    "Розница": 0.7, "Опт": 0.3, "Общая": 0.65, "Тендеры": 0.35, "Продажи": 0.65, "Проекты": 0.35,
}  # fmt: skip
AMOUNT_MEDIAN_RUB = {
    "Розница": 120_000, "Опт": 600_000, "Общая": 300_000, "Тендеры": 1_500_000, "Продажи": 250_000,
    "Проекты": 900_000,
}  # fmt: skip
ONEC_AMOUNT_MEDIAN_RUB = 400_000
ONEC_CURRENCIES = (("RUB", 0.72), ("USD", 0.16), ("EUR", 0.12))
MEGAPLAN_CURRENCIES = (("RUB", 0.9), ("USD", 0.1))
# systems where a deal may move to another pipeline (a Megaplan program's deal cannot)
PIPELINE_SWITCHING = ("amocrm", "bitrix24")
# systems whose deals are never deleted (an export lists what exists, a file deletes nothing)
NEVER_DELETED = ("file",)


@dataclass
class Book:
    """What the simulator needs to know about one source."""

    source: Source
    ladders: list[Ladder]
    ladder_weights: list[float]
    managers: list[Manager]  # who may own deals
    deactivated_at: dict[str, int]  # manager key -> since when they own nothing new here
    reviewer: Manager | None  # the head of sales: decides on conditional refusals
    companies: list[Company]
    loose_contacts: list[Contact]  # contacts with no company (amoCRM private buyers)
    reasons: dict[str, list[LossReason]]  # true reason -> the source's reasons for it
    unknown_true: list[str]  # true reasons the source only has unmapped reasons for
    next_deal: int  # next integer id (amoCRM, Bitrix24) or 1C code number
    next_comment: int

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def deletes(self) -> bool:
        """Whether the source's deals can be deleted (an export deletes nothing)."""
        return self.source.system not in NEVER_DELETED

    def managers_at(self, ts: int) -> list[Manager]:
        return [m for m in self.managers if self.deactivated_at.get(m.key, 1 << 62) > ts]


class _Stop(Exception):
    """The world's clock stops before the deal's next event."""


@dataclass
class LossChoice:
    true_reason: str
    reason: LossReason | None
    stage: Stage | None  # a Bitrix24 failure stage that names the reason
    comment: str | None


class Simulator:
    def __init__(self, rng: random.Random, rate_of: Callable[[str, datetime], Decimal], horizon_ts: int):
        self.rng = rng
        self.rate_of = rate_of  # (currency, moment) -> roubles per unit
        self.horizon = horizon_ts

    # -- new deals ------------------------------------------------------------------------
    def new_deal(self, book: Book, created_ts: int, may_delete: bool = True) -> Deal:
        rng = self.rng
        ladder = (
            rng.choices(book.ladders, book.ladder_weights)[0] if len(book.ladders) > 1 else book.ladders[0]
        )
        candidates = book.managers_at(created_ts)
        manager = rng.choice(candidates)
        company, contact_ids = self._customer(book)
        amount, currency = self._amount(book, ladder, created_ts)
        deal_id, number = self._ids(book)
        system = book.source.system
        if ladder.unsorted is not None and rng.random() < 0.65:
            level, stage, robot = 0, ladder.unsorted, True
        else:
            level = 1 if rng.random() < (0.35 if system == "amocrm" else 0.12) else 0
            stage, robot = ladder.levels[level][0], False
            if stage.canonical is None:
                stage = ladder.levels[level][-1]
        created = to_dt(created_ts)
        deal = Deal(
            id=deal_id,
            source_name=book.name,
            number=number,
            name=self._deal_name(book, ladder, stage, company, deal_id),
            pipeline_id=ladder.pipeline.id,
            stage_id=stage.id,
            manager_key=manager.key,
            company_id=company.id if company else None,
            contact_ids=contact_ids,
            amount=amount,
            currency=currency,
            created_at=created,
            updated_at=created,
            closed_at=None,
            status="open",
            loss_reason_id=None,
            comments=[],
            moves=[Move(created, ladder.pipeline.id, stage.id, manager.key, None if robot else manager.key)],
        )
        if system == "onec" and rng.random() < P_ONEC_EMPTY_REFS:
            deal.defects.add("onec_empty_refs")
            if rng.random() < 0.5:  # ... and half of them the partner reference too
                deal.company_id, deal.contact_ids = None, []
        run = _Run(self, book, deal, ladder, manager)
        try:
            if rng.random() < P_FAST_LOSS:
                run.lose_fast()
            else:
                run.walk(level, ladder.levels[level].index(stage))
        except _Stop:
            pass
        self.finish(book, deal, may_delete)
        return deal

    def finish(self, book: Book, deal: Deal, may_delete: bool = True) -> None:
        """Set updated_at and the rendering defects; delete a few deals."""
        rng = self.rng
        deal.updated_at = _last_activity(deal)
        system = book.source.system
        if system == "amocrm" and len(deal.moves) >= 2 and rng.random() < P_DUPLICATED_EVENT:
            deal.defects.add("duplicated_event")
        if (
            system == "onec"
            and len({m.stage_id for m in deal.moves}) >= 2
            and rng.random() < P_ONEC_EMPTY_DATES
        ):
            deal.defects.add("onec_empty_dates")
        if may_delete and book.deletes and rng.random() < P_DELETED:
            self.delete(deal, to_ts(deal.updated_at), self.horizon)

    def delete(self, deal: Deal, after_ts: int, before_ts: int) -> None:
        if before_ts <= after_ts:
            return
        span = before_ts - after_ts
        at = after_ts + max(1, min(span, int(self.rng.expovariate(1 / (10 * DAY)))))
        deal.deleted_at = to_dt(at)
        deal.updated_at = deal.deleted_at

    # -- open deals when time advances ----------------------------------------------------
    def resume(self, book: Book, deal: Deal, ladder: Ladder, floor_ts: int, p_overdue: float) -> bool:
        """Move an open deal on from where it sits, up to the horizon. An event that would have
        fallen before ``floor_ts`` (the old clock) happens after it with probability
        ``p_overdue``, or not at all. True when the deal changed."""
        before = (len(deal.moves), deal.status, len(deal.comments))
        manager = next((m for m in book.managers if m.key == deal.manager_key), None) or self.rng.choice(
            book.managers_at(floor_ts)
        )
        run = _Run(self, book, deal, ladder, manager, floor=floor_ts, p_overdue=p_overdue)
        run.t = to_ts(deal.moves[-1].at)
        stage = ladder.stage_by_id[deal.stage_id]
        try:
            if stage.kind == "conditional_refusal":
                previous = next(
                    ladder.stage_by_id[m.stage_id]
                    for m in reversed(deal.moves)
                    if m.pipeline_id == ladder.pipeline.id
                    and ladder.stage_by_id[m.stage_id].kind == "process"
                )
                back = run.review(previous)
                if back is not None:
                    run.walk(*back)
            else:
                level = ladder.level_of[stage.id]
                run.walk(level, ladder.levels[level].index(stage))
        except _Stop:
            pass
        changed = before != (len(deal.moves), deal.status, len(deal.comments))
        if changed:
            deal.updated_at = _last_activity(deal)
        return changed

    # -- pieces ---------------------------------------------------------------------------
    def _customer(self, book: Book) -> tuple[Company | None, list[str]]:
        rng = self.rng
        no_company = {"amocrm": 0.08, "bitrix24": 0.03}.get(book.source.system, 0.0)
        if book.loose_contacts and rng.random() < no_company:
            return None, [rng.choice(book.loose_contacts).id]
        if not book.companies:
            return None, []
        company = rng.choice(book.companies)
        return company, list(company.contact_ids[: 1 + (rng.random() < 0.2)])

    def _amount(self, book: Book, ladder: Ladder, created_ts: int) -> tuple[Decimal, str]:
        rng = self.rng
        system = book.source.system
        if system == "onec":
            rub = rng.lognormvariate(math.log(ONEC_AMOUNT_MEDIAN_RUB), 0.9)
            currency = rng.choices([c for c, _ in ONEC_CURRENCIES], [w for _, w in ONEC_CURRENCIES])[0]
            if currency == "RUB":
                return Decimal(round(rub, -2)).quantize(Decimal("0.01")), currency
            rate = self.rate_of(currency, to_dt(created_ts))
            return (Decimal(round(rub / float(rate), 0))).quantize(Decimal("0.01")), currency
        rub = rng.lognormvariate(math.log(AMOUNT_MEDIAN_RUB.get(ladder.pipeline.name, 200_000)), 0.8)
        if system == "amocrm":
            return Decimal(int(round(rub, -2))), "RUB"
        if system == "megaplan":
            currency = rng.choices(*zip(*MEGAPLAN_CURRENCIES, strict=True))[0]
            if currency == "RUB":
                return Decimal(int(round(rub, -3))), currency
            rate = self.rate_of(currency, to_dt(created_ts))
            return Decimal(round(rub / float(rate), -1)).quantize(Decimal(1)), currency
        if system == "creatio":  # the site's base currency, whole roubles
            return Decimal(int(round(rub, -2))), "RUB"
        return Decimal(f"{rub:.2f}") if rng.random() < 0.3 else Decimal(int(round(rub, -3))), "RUB"

    def _ids(self, book: Book) -> tuple[str, str]:
        rng = self.rng
        system = book.source.system
        if system == "onec":
            number = book.next_deal
            book.next_deal += 1
            return guid(rng), f"00-{number:08d}"
        if system == "creatio":  # no number: the opportunity is its GUID
            opportunity = guid(rng)
            return opportunity, opportunity
        if system == "rosbiznessoft":
            number = book.next_deal
            book.next_deal += 1
            return str(number), f"С-{number:05d}"
        deal_id = str(book.next_deal)
        book.next_deal += 1 + (rng.random() < 0.1) * rng.randrange(1, 4)
        return deal_id, deal_id

    def _deal_name(
        self, book: Book, ladder: Ladder, stage: Stage, company: Company | None, deal_id: str
    ) -> str:
        rng = self.rng
        product = rng.choice(vocab.PRODUCTS)
        who = company.name if company else ""
        if book.source.system == "amocrm":
            if stage is ladder.unsorted and rng.random() < 0.5:
                return f"Заявка с сайта #{deal_id}"
            return f"{who}: поставка {product}" if who else f"Поставка {product}"
        if book.source.system == "bitrix24":
            if ladder.pipeline.name == "Тендеры":
                return f"Тендер № {rng.randrange(100000, 999999)}: поставка {product}"
            return f"{who}: поставка {product}" if who else f"Поставка {product}"
        if book.source.system == "megaplan":
            return (
                f"Поставка оборудования №{deal_id}"
                if ladder.pipeline.name == "Продажи"
                else f"Проект внедрения №{deal_id}"
            )
        return f"Поставка {product} ({who})" if who else f"Поставка {product}"

    def choose_loss(self, book: Book, ladder: Ladder, level: int, fast: bool) -> LossChoice:
        """The true reason of a loss and how the source records it. In a pipeline whose every
        failure stage names a reason (Megaplan's "Продажи"), the stage is always the reason."""
        rng = self.rng
        stage_only = bool(ladder.lost) and not ladder.generic_lost()
        unknown_pool = ([] if stage_only else list(book.unknown_true)) + [
            STAGE_REASON_TRUE[s.reason_name]
            for s in ladder.reason_stages()
            if s.reason_name and STAGE_REASON_CANONICAL[s.reason_name] is None
        ]
        if unknown_pool and rng.random() < P_UNKNOWN_REASON:
            true = rng.choice(unknown_pool)
        else:
            weights = LOSS_WEIGHTS_EARLY if level <= 1 else LOSS_WEIGHTS_LATE
            known = (
                {STAGE_REASON_TRUE[s.reason_name or ""] for s in ladder.reason_stages()}
                if stage_only
                else book.reasons
            )
            codes = [c for c in weights if c in known]
            true = rng.choices(codes, [weights[c] for c in codes])[0]
        missing = not stage_only and rng.random() < (0.3 if fast else P_MISSING_REASON)
        stage: Stage | None = None
        reason: LossReason | None = None
        if not missing:
            stages = [s for s in ladder.reason_stages() if STAGE_REASON_TRUE.get(s.reason_name or "") == true]
            if stages and (stage_only or true not in book.reasons or rng.random() < 0.65):
                stage = stages[0]
            elif true in book.reasons:
                reason = rng.choice(book.reasons[true])
        p_missing_comment = (
            0.6
            if fast
            else P_MISSING_COMMENT_OTHER_SUPPLIER
            if true == "other_supplier"
            else P_MISSING_COMMENT
        )
        if rng.random() < p_missing_comment:
            comment = None if rng.random() < 0.5 else rng.choice(vocab.SHORT_COMMENTS)
        else:
            comment = vocab.fill(rng.choice(vocab.COMMENT_TEMPLATES[true]), rng)
        return LossChoice(true, reason, stage, comment)

    def dwell(self, level: int) -> int:
        median = DWELL_MEDIAN_HOURS[level] * HOUR
        return int(min(MAX_DWELL, self.rng.lognormvariate(math.log(median), DWELL_SIGMA)))


class _Run:
    """One deal being moved along its pipeline."""

    def __init__(
        self,
        sim: Simulator,
        book: Book,
        deal: Deal,
        ladder: Ladder,
        manager: Manager,
        floor: int | None = None,
        p_overdue: float = 1.0,
    ):
        self.sim, self.rng, self.book, self.deal = sim, sim.rng, book, deal
        self.ladder, self.manager = ladder, manager
        self.t = to_ts(deal.created_at)
        self.created = self.t
        self.floor, self.p_overdue = floor, p_overdue
        self.onec = book.source.system == "onec"
        self.switching = len(book.ladders) > 1 and book.source.system in PIPELINE_SWITCHING

    # -- time -----------------------------------------------------------------------------
    def _advance(self, dwell: int) -> int:
        t = self.t + max(MINUTE, dwell)
        if self.floor is not None:
            floor, self.floor = self.floor, None
            if t <= floor:
                if self.rng.random() >= self.p_overdue:
                    raise _Stop
                t = floor + MINUTE + int(self.rng.random() * max(1, self.sim.horizon - floor - MINUTE))
        if t > self.sim.horizon:
            raise _Stop
        self.t = t
        return t

    def _owner_at(self, t: int) -> None:
        """A manager deactivated in this system hands the deal to an active one."""
        if self.book.deactivated_at.get(self.manager.key, 1 << 62) <= t:
            self.manager = self.rng.choice(self.book.managers_at(t))

    def move(self, dwell: int, stage: Stage, by: Manager | None = None, robot: bool = False) -> None:
        t = self._advance(dwell)
        self._owner_at(t)
        by_key = None if robot else (by or self.manager).key
        deal = self.deal
        deal.moves.append(Move(to_dt(t), self.ladder.pipeline.id, stage.id, self.manager.key, by_key))
        deal.pipeline_id, deal.stage_id, deal.manager_key = (
            self.ladder.pipeline.id,
            stage.id,
            self.manager.key,
        )

    def _moment(self) -> datetime:
        """The current time as a datetime (the last move's own object when it is that move's)."""
        last = self.deal.moves[-1].at
        return last if to_ts(last) == self.t else to_dt(self.t)

    def strength(self, level: int) -> float:
        return self.manager.strengths.get(LEVELS[level], 0.7)

    def current(self) -> Stage:
        return self.ladder.stage_by_id[self.deal.stage_id]

    # -- the walk ---------------------------------------------------------------------------
    def walk(self, level: int, pos: int) -> None:
        rng = self.rng
        while True:
            success = rng.random() < self.strength(level)
            self._rest_of_level(level, pos, to_end=success and level == 3 and self.onec)
            if not success:
                if rng.random() < P_STALE:
                    return
                back = self.lose(level)
                if back is None:
                    return
                level, pos = back
                continue
            if level == 3:
                self.win()
                return
            if level >= 1 and rng.random() < P_BACKWARD:
                self._step_back(level)
            robot = self.current() is self.ladder.unsorted and rng.random() < 0.3  # an autoresponder
            if level >= 1 and self.switching and rng.random() < P_SWITCH_PIPELINE:
                self.ladder = rng.choice([lad for lad in self.book.ladders if lad is not self.ladder])
            nxt = level + 1
            if nxt < 3 and rng.random() < P_SKIP_LEVEL and rng.random() < self.strength(nxt):
                nxt += 1
            stage = self._entry(nxt)
            self.move(self.sim.dwell(level), stage, robot=robot)
            level, pos = nxt, self.ladder.levels[nxt].index(stage)

    def _entry(self, level: int) -> Stage:
        stages = self.ladder.levels[level]
        if stages[0].canonical is None and self.rng.random() >= P_UNMAPPED_VISIT:
            return next(s for s in stages if s.canonical is not None)
        return stages[0]

    def _rest_of_level(self, level: int, pos: int, to_end: bool) -> None:
        stages = self.ladder.levels[level]
        rng = self.rng
        chosen = [
            s
            for s in stages[pos + 1 :]
            if rng.random() < (P_UNMAPPED_VISIT if s.canonical is None else P_STAGE_VISIT)
        ]
        last = chosen[-1] if chosen else stages[pos]
        if last.canonical is None or (to_end and last is not stages[-1]):
            chosen.append(stages[-1])  # a level always ends in a mapped stage
        for stage in chosen:
            self.move(self.sim.dwell(level), stage)

    def _step_back(self, level: int) -> None:
        here = self.current()
        back = self.rng.choice([s for s in self.ladder.levels[level - 1] if s.canonical is not None])
        self.move(self.sim.dwell(level), back)
        self.move(self.sim.dwell(level - 1), here)

    def win(self) -> None:
        dwell = self.sim.dwell(3)
        if self.ladder.won is not None:
            self.move(dwell, self.ladder.won)
        else:
            self._advance(dwell)
        self.deal.status, self.deal.closed_at = "won", self._moment()

    # -- losing ---------------------------------------------------------------------------
    def lose_fast(self) -> None:
        choice = self.sim.choose_loss(self.book, self.ladder, 0, fast=True)
        self._close_lost(self.rng.randrange(2 * MINUTE, 25 * MINUTE), choice)

    def lose(self, level: int) -> tuple[int, int] | None:
        """Close the deal lost from its current stage, or put it into the conditional refusal
        (from where it may come back: then the (level, position) it continues from)."""
        choice = self.sim.choose_loss(self.book, self.ladder, level, fast=False)
        refusal = self.ladder.refusal
        if refusal is not None and self.rng.random() < P_REFUSAL:
            previous = self.current()
            self.move(self.sim.dwell(level), refusal)
            self._record_loss(choice)
            return self.review(previous, choice.stage)
        dwell = max(self.sim.dwell(level), self.created + MIN_ORDINARY_LOSS_MINUTES * MINUTE - self.t)
        self._close_lost(dwell, choice)
        return None

    def review(self, previous: Stage, reason_stage: Stage | None = None) -> tuple[int, int] | None:
        """The head of sales decides on a deal in the conditional refusal; closing it, into
        ``reason_stage`` (the failure stage naming the reason picked on the way in) or the
        generic lost stage."""
        rng = self.rng
        reviewer = self.book.reviewer or self.manager
        dwell = int(min(MAX_DWELL, rng.lognormvariate(math.log(REFUSAL_MEDIAN_HOURS * HOUR), DWELL_SIGMA)))
        if rng.random() < P_REFUSAL_RETURN:
            others = [m for m in self.book.managers_at(self.t + dwell) if m is not self.manager]
            self.manager = rng.choice(others) if others else self.manager
            self.move(dwell, previous, by=reviewer)
            self.deal.loss_reason_id = None
            level = self.ladder.level_of[previous.id]
            return level, self.ladder.levels[level].index(previous)
        generic = self.ladder.generic_lost()
        lost = reason_stage or (generic[0] if generic else None)
        if lost is None:  # every failure stage names a reason (a deal resumed in the refusal): pick one
            lost = self.sim.choose_loss(self.book, self.ladder, 3, False).stage or self.ladder.lost[0]
        self.move(dwell, lost, by=reviewer)
        self.deal.status, self.deal.closed_at = "lost", self._moment()
        return None

    def _close_lost(self, dwell: int, choice: LossChoice) -> None:
        if self.onec:
            self._advance(dwell)
        else:
            stage = choice.stage
            if stage is None:
                generic = self.ladder.generic_lost()
                stage = generic[0] if len(generic) == 1 or self.rng.random() < 0.8 else generic[1]
            self.move(dwell, stage)
        self._record_loss(choice)
        self.deal.status, self.deal.closed_at = "lost", self._moment()

    def _record_loss(self, choice: LossChoice) -> None:
        deal = self.deal
        deal.loss_reason_id = choice.reason.id if choice.reason else None
        if choice.comment is not None:
            comment_id = str(self.book.next_comment)
            self.book.next_comment += 1 + self.rng.randrange(3)
            deal.comments.append(Comment(comment_id, self._moment(), self.manager.key, choice.comment))


def _last_activity(deal: Deal) -> datetime:
    latest = deal.moves[-1].at if deal.moves else deal.created_at
    for moment in (deal.closed_at, deal.deleted_at, *(c.at for c in deal.comments)):
        if moment is not None and moment > latest:
            latest = moment
    return max(latest, deal.updated_at)
