"""What a deal's history means, read from the World model alone: the stage it was lost at,
its loss reason and comment, how far it got, and which data-quality rules it breaks.

The truth (``sandbox.world.truth``) and the generator's defect tags both use these, so the
tags recorded on a deal always agree with the truth files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sandbox.world.layout import (
    CANONICAL_STAGES,
    COMMENT_MIN_CHARS,
    LOST_TOO_FAST_MINUTES,
    NEEDS_REVIEW,
    STAGE_REASON_CANONICAL,
    Ladder,
    ladders_of,
)
from sandbox.world.model import Company, Deal, LossReason, Manager, Move, Stage, World

# defect tags derived from a deal's data by the rules below
RULE_TAGS = (
    "missing_reason",
    "missing_comment",
    "skipped_conditional_refusal",
    "lost_too_fast",
    "unknown_reason",
    "reason_needs_review",
    "unmapped_stage",
)
# defect tags that describe how a stand-in renders the deal (set by the generator)
RENDER_TAGS = ("onec_empty_dates", "onec_empty_refs", "duplicated_event")
ALL_TAGS = RULE_TAGS + RENDER_TAGS
# the tags that are issues of a lost deal (dq_lost_deal_issues); the others concern any deal
LOST_DEAL_TAGS = frozenset(RULE_TAGS) - {"unmapped_stage"}


class WorldIndex:
    """Lookups over a World, built once."""

    def __init__(self, world: World):
        self.world = world
        self.ladders: dict[tuple[str, str], Ladder] = ladders_of(world)
        self.reasons: dict[tuple[str, str], LossReason] = {
            (r.source_name, r.id): r for r in world.loss_reasons
        }
        self.managers: dict[str, Manager] = {m.key: m for m in world.managers}
        self.companies: dict[tuple[str, str], Company] = {(c.source_name, c.id): c for c in world.companies}
        self.systems: dict[str, str] = {s.name: s.system for s in world.sources}

    def stage(self, deal: Deal, move: Move) -> Stage:
        return self.ladders[(deal.source_name, move.pipeline_id)].stage_by_id[move.stage_id]

    def ladder(self, deal: Deal, pipeline_id: str | None = None) -> Ladder:
        return self.ladders[(deal.source_name, pipeline_id or deal.pipeline_id)]

    def pipeline_name(self, deal: Deal, pipeline_id: str | None = None) -> str:
        """The pipeline's name as the warehouse sees it: Creatio has none (one stage list per site)."""
        if self.systems[deal.source_name] == "creatio":
            return ""
        return self.ladder(deal, pipeline_id).pipeline.name


@dataclass
class LossFacts:
    lost_at: Stage | None  # the last stage before the lost stage, looking through the refusal
    lost_at_pipeline: str | None  # its pipeline's name
    reason_raw: str  # the source's text, "" when missing
    reason_code: str  # canonical code, "other" when unknown to the mapping, "" when missing
    reason_known: bool
    comment: str  # the last comment on the deal, "" when none


# systems that keep a deal's comments in one text, one per line (Creatio's Notes, an
# export's comment column): that text is the loss comment
JOINED_COMMENTS = ("creatio", "file")


def loss_comment(deal: Deal, system: str = "") -> str:
    """The latest comment on the deal; Creatio and a file export: every comment, one per line."""
    if not deal.comments:
        return ""
    if system in JOINED_COMMENTS:
        return "\n".join(c.text for c in sorted(deal.comments, key=lambda c: c.at)).strip()
    return max(enumerate(deal.comments), key=lambda ic: (ic[1].at, ic[0]))[1].text


def stage_reason(system: str, stage: Stage | None) -> str | None:
    """The reason a failure stage names: Bitrix24's reason stages; every negative state of
    Megaplan (where the funnel names reasons by state, the state is the reason)."""
    if stage is None or stage.kind != "lost":
        return None
    if stage.reason_name:
        return stage.reason_name
    return stage.name if system == "megaplan" else None


def passed_refusal(ix: WorldIndex, deal: Deal) -> bool:
    return any(ix.stage(deal, m).kind == "conditional_refusal" for m in deal.moves)


def loss_facts(ix: WorldIndex, deal: Deal) -> LossFacts:
    """Only meaningful for lost deals."""
    system = ix.systems[deal.source_name]
    lost_at: Stage | None = None
    lost_pipeline: str | None = None
    final: Stage | None = None
    if system == "onec":  # lost by status while sitting in a process stage
        if deal.moves:
            lost_at = ix.stage(deal, deal.moves[-1])
            lost_pipeline = deal.moves[-1].pipeline_id
    else:
        if deal.moves:
            final = ix.stage(deal, deal.moves[-1])
        for move in reversed(deal.moves[:-1]):
            stage = ix.stage(deal, move)
            if stage.kind in ("conditional_refusal", "lost"):
                continue
            lost_at, lost_pipeline = stage, move.pipeline_id
            break
    # the reason field first (Megaplan's custom field wins over the state; a Bitrix24 deal in a
    # reason stage has its field empty), else the reason the failure stage names
    raw, code, known = "", "", True
    named = stage_reason(system, final)
    if deal.loss_reason_id:
        reason = ix.reasons[(deal.source_name, deal.loss_reason_id)]
        raw = reason.name
        known = reason.canonical is not None
        code = reason.canonical or "other"
    elif named:
        raw = named
        mapped = STAGE_REASON_CANONICAL.get(named)
        known = mapped is not None
        code = mapped or "other"
    pipeline_name = ix.pipeline_name(deal, lost_pipeline) if lost_pipeline else None
    return LossFacts(lost_at, pipeline_name, raw, code, known, loss_comment(deal, system))


def skipped_refusal(ix: WorldIndex, deal: Deal) -> bool:
    """Lost in a pipeline that has a conditional refusal stage, straight from another stage."""
    if deal.status != "lost" or len(deal.moves) < 1:
        return False
    last = deal.moves[-1]
    ladder = ix.ladder(deal, last.pipeline_id)
    if ladder.refusal is None or ladder.stage_by_id[last.stage_id].kind != "lost":
        return False
    if len(deal.moves) < 2:
        return True
    return ix.stage(deal, deal.moves[-2]).kind != "conditional_refusal"


def furthest_stage(ix: WorldIndex, deal: Deal) -> str:
    """The furthest canonical stage reached as the demo mapping sees it ("paid" for won deals;
    "" when the deal never sat in a mapped stage)."""
    if deal.status == "won":
        return CANONICAL_STAGES[-1]
    best = -1
    for move in deal.moves:
        canonical = ix.stage(deal, move).canonical
        if canonical is not None:
            best = max(best, CANONICAL_STAGES.index(canonical))
    return CANONICAL_STAGES[best] if best >= 0 else ""


def visited_unmapped(ix: WorldIndex, deal: Deal) -> bool:
    for move in deal.moves:
        stage = ix.stage(deal, move)
        if stage.kind == "process" and stage.canonical is None:
            return True
    return False


def rule_tags(ix: WorldIndex, deal: Deal) -> set[str]:
    tags: set[str] = set()
    if visited_unmapped(ix, deal):
        tags.add("unmapped_stage")
    if deal.status != "lost":
        return tags
    facts = loss_facts(ix, deal)
    if not facts.reason_raw:
        tags.add("missing_reason")
    elif not facts.reason_known:
        tags.add("unknown_reason")
    short = len(facts.comment.strip()) < COMMENT_MIN_CHARS
    if short:
        tags.add("missing_comment")
    if facts.reason_code in NEEDS_REVIEW and short:
        tags.add("reason_needs_review")
    if skipped_refusal(ix, deal):
        tags.add("skipped_conditional_refusal")
    if deal.closed_at is not None and deal.closed_at - deal.created_at < timedelta(
        minutes=LOST_TOO_FAST_MINUTES
    ):
        tags.add("lost_too_fast")
    return tags


def retag(ix: WorldIndex, deal: Deal) -> None:
    """Recompute the rule tags of a deal, keeping its rendering tags."""
    keep = {t for t in deal.defects if t in RENDER_TAGS}
    deal.defects = keep | rule_tags(ix, deal)
