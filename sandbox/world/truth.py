"""The ground truth: what the warehouse must conclude from the sandbox's APIs, computed from
the World's own model (never from an API rendering).

``write_truth(world, out_dir)`` writes, UTF-8 with a header row and ISO-8601 UTC timestamps:
- ``deals.csv``: one row per deal (deleted deals included, ``is_deleted=true``);
- ``transitions.csv``: one row per stage change the warehouse can observe (deleted deals left out);
- ``dq_issues.csv``: one row per (deal, issue) (deleted deals left out);
- ``summary.json``: counts per source and status, issue counts, the defect rates.
``load_truth(dir)`` reads them back. The columns are documented in sandbox/README.md.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sandbox.world.generate import gc_paused
from sandbox.world.layout import CANONICAL_STAGES, REASON_CODES
from sandbox.world.model import Deal, Stage, World
from sandbox.world.money import rate_on, to_base
from sandbox.world.rules import (
    ALL_TAGS,
    LOST_DEAL_TAGS,
    RENDER_TAGS,
    WorldIndex,
    furthest_stage,
    loss_facts,
    passed_refusal,
    rule_tags,
)
from sandbox.world.vocabulary import inn_digits, inn_is_valid

DEAL_COLUMNS = [
    "deal_key", "source_name", "source_system", "deal_id", "deal_number", "deal_name", "pipeline_name",
    "stage_name", "canonical_stage", "status", "furthest_canonical_stage", "lost_at_pipeline",
    "lost_at_stage", "lost_at_canonical_stage", "passed_conditional_refusal", "loss_reason_raw",
    "loss_reason_code", "loss_comment", "amount", "currency", "amount_base", "created_at", "closed_at",
    "cycle_days", "manager_key", "manager_email", "manager_name", "customer_key", "customer_name",
    "is_deleted", "deleted_at", "defects",
]  # fmt: skip
TRANSITION_COLUMNS = [
    "deal_key", "source_name", "seq", "from_pipeline", "from_stage_id", "from_stage", "from_canonical_stage",
    "to_pipeline", "to_stage_id", "to_stage", "to_canonical_stage", "transitioned_at", "hours_in_from_stage",
]  # fmt: skip
DQ_COLUMNS = ["deal_key", "source_name", "deal_id", "issue_type", "is_lost_deal_issue", "manager_email"]


def iso(moment: datetime | None) -> str:
    """ISO-8601 in UTC with a Z, to the second ("" for None)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else ""


def _bool(value: bool) -> str:
    return "true" if value else "false"


def stage_canonical(stage: Stage) -> str:
    """A stage's canonical code as the demo mapping sees it: won stages are the last stage."""
    if stage.kind == "won":
        return CANONICAL_STAGES[-1]
    return stage.canonical or ""


def customer_key(ix: WorldIndex, deal: Deal) -> tuple[str, str]:
    """("inn:<digits>" | "<source>:<company id>" | "", customer name)."""
    if deal.company_id is None:
        return "", ""
    company = ix.companies[(deal.source_name, deal.company_id)]
    digits = inn_digits(company.inn_rendered)
    if inn_is_valid(digits):
        return f"inn:{digits}", company.name
    return f"{deal.source_name}:{company.id}", company.name


def deal_row(ix: WorldIndex, deal: Deal) -> dict[str, str]:
    ladder = ix.ladder(deal)
    current = ladder.stage_by_id[deal.stage_id]
    manager = ix.managers[deal.manager_key]
    cust_key, cust_name = customer_key(ix, deal)
    lost = deal.status == "lost"
    facts = loss_facts(ix, deal) if lost else None
    rate_moment = deal.closed_at or deal.created_at
    amount_base = to_base(deal.amount, rate_on(ix.world.rates, deal.currency, rate_moment))
    cycle = ""
    if deal.closed_at is not None:
        cycle = f"{(deal.closed_at - deal.created_at).total_seconds() / 86400:.4f}"
    return {
        "deal_key": f"{deal.source_name}:{deal.id}",
        "source_name": deal.source_name,
        "source_system": ix.systems[deal.source_name],
        "deal_id": deal.id,
        "deal_number": deal.number,
        "deal_name": deal.name,
        "pipeline_name": ix.pipeline_name(deal),
        "stage_name": current.name,
        "canonical_stage": stage_canonical(current),
        "status": deal.status,
        "furthest_canonical_stage": furthest_stage(ix, deal),
        "lost_at_pipeline": (facts.lost_at_pipeline or "") if facts else "",
        "lost_at_stage": facts.lost_at.name if facts and facts.lost_at else "",
        "lost_at_canonical_stage": (facts.lost_at.canonical or "") if facts and facts.lost_at else "",
        "passed_conditional_refusal": _bool(passed_refusal(ix, deal)),
        "loss_reason_raw": facts.reason_raw if facts else "",
        "loss_reason_code": facts.reason_code if facts else "",
        "loss_comment": facts.comment if facts else "",
        "amount": f"{deal.amount:.2f}",
        "currency": deal.currency,
        "amount_base": f"{amount_base:.2f}",
        "created_at": iso(deal.created_at),
        "closed_at": iso(deal.closed_at),
        "cycle_days": cycle,
        "manager_key": manager.key,
        "manager_email": manager.email.lower(),
        "manager_name": manager.name,
        "customer_key": cust_key,
        "customer_name": cust_name,
        "is_deleted": _bool(deal.deleted_at is not None),
        "deleted_at": iso(deal.deleted_at),
        "defects": ";".join(t for t in ALL_TAGS if t in deal.defects),
    }


def observed_entries(ix: WorldIndex, deal: Deal) -> list[tuple[str, Stage, datetime]]:
    """(pipeline id, stage, entered at) in the order the warehouse can rebuild them.

    amoCRM events and Bitrix24 stage history record every move. 1C keeps one register row
    per (deal, stage) holding the latest entry into that stage: earlier visits of a stage are
    lost, and the rows are ordered by their start dates."""
    entries = [(m.pipeline_id, ix.stage(deal, m), m.at) for m in deal.moves]
    if ix.systems[deal.source_name] != "onec":
        return entries
    latest: dict[str, tuple[str, Stage, datetime]] = {}
    for entry in entries:
        latest[entry[1].id] = entry
    return sorted(latest.values(), key=lambda e: e[2])


def transition_rows(ix: WorldIndex, deal: Deal) -> Iterator[dict[str, str]]:
    entries = observed_entries(ix, deal)
    key = f"{deal.source_name}:{deal.id}"
    for seq, (before, after) in enumerate(zip(entries, entries[1:], strict=False), start=1):
        hours = (after[2] - before[2]).total_seconds() / 3600
        yield {
            "deal_key": key,
            "source_name": deal.source_name,
            "seq": str(seq),
            "from_pipeline": ix.pipeline_name(deal, before[0]),
            "from_stage_id": before[1].id,
            "from_stage": before[1].name,
            "from_canonical_stage": stage_canonical(before[1]),
            "to_pipeline": ix.pipeline_name(deal, after[0]),
            "to_stage_id": after[1].id,
            "to_stage": after[1].name,
            "to_canonical_stage": stage_canonical(after[1]),
            "transitioned_at": iso(after[2]),
            "hours_in_from_stage": f"{hours:.4f}",
        }


def issue_types(ix: WorldIndex, deal: Deal) -> list[str]:
    found = rule_tags(ix, deal) | {t for t in deal.defects if t in RENDER_TAGS}
    return [t for t in ALL_TAGS if t in found]


def dq_rows(ix: WorldIndex, deal: Deal) -> Iterator[dict[str, str]]:
    for issue in issue_types(ix, deal):
        yield {
            "deal_key": f"{deal.source_name}:{deal.id}",
            "source_name": deal.source_name,
            "deal_id": deal.id,
            "issue_type": issue,
            "is_lost_deal_issue": _bool(issue in LOST_DEAL_TAGS),
            "manager_email": ix.managers[deal.manager_key].email.lower(),
        }


def write_truth(world: World, out_dir: str | Path, deals: Iterable[Deal] | None = None) -> Path:
    """Write the four truth files into ``out_dir`` (created if needed); return it. ``deals``
    (default ``world.deals``) may be a stream, e.g. from ``generate_stream``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ix = WorldIndex(world)
    by_source: dict[str, Counter[str]] = {s.name: Counter() for s in world.sources}
    issues: Counter[str] = Counter()
    rates = _RateCounter(ix)
    transitions = 0
    total = 0
    with (
        gc_paused(),
        _writer(out / "deals.csv", DEAL_COLUMNS) as deals_out,
        _writer(out / "transitions.csv", TRANSITION_COLUMNS) as transitions_out,
        _writer(out / "dq_issues.csv", DQ_COLUMNS) as dq_out,
    ):
        for deal in world.deals if deals is None else deals:
            total += 1
            deals_out.writerow(deal_row(ix, deal))
            counts = by_source[deal.source_name]
            if deal.deleted_at is not None:
                counts["deleted"] += 1
                continue
            counts[deal.status] += 1
            for row in transition_rows(ix, deal):
                transitions_out.writerow(row)
                transitions += 1
            kinds = issue_types(ix, deal)
            for row in dq_rows(ix, deal):
                dq_out.writerow(row)
            issues.update(kinds)
            rates.add(deal, kinds)
    summary = {
        "seed": world.seed,
        "size": world.size,
        "now": iso(world.now),
        "deals": total,
        "by_source": {
            name: {k: c[k] for k in ("open", "won", "lost", "deleted")} for name, c in by_source.items()
        },
        "by_status": {k: sum(c[k] for c in by_source.values()) for k in ("open", "won", "lost", "deleted")},
        "transitions": transitions,
        "dq_issues": {t: issues[t] for t in ALL_TAGS},
        "defect_rates": rates.summary(),
        "loss_reason_codes": REASON_CODES,
    }
    (out / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return out


class _RateCounter:
    """Each defect's rate over the deals it can occur in (deleted deals left out)."""

    POPULATION = {
        "missing_reason": "lost deals",
        "missing_comment": "lost deals",
        "lost_too_fast": "lost deals",
        "unknown_reason": "lost deals with a reason",
        "reason_needs_review": "lost deals",
        "skipped_conditional_refusal": "lost deals closed in a pipeline with a conditional refusal stage",
        "unmapped_stage": "all deals",
        "onec_empty_dates": "1C deals",
        "onec_empty_refs": "1C deals",
        "duplicated_event": "amoCRM deals",
    }

    def __init__(self, ix: WorldIndex):
        self.ix = ix
        self.population: Counter[str] = Counter()
        self.count: Counter[str] = Counter()

    def add(self, deal: Deal, kinds: list[str]) -> None:
        system = self.ix.systems[deal.source_name]
        pops = {"all deals"}
        if system == "onec":
            pops.add("1C deals")
        if system == "amocrm":
            pops.add("amoCRM deals")
        if deal.status == "lost":
            pops.add("lost deals")
            facts = loss_facts(self.ix, deal)
            if facts.reason_raw:
                pops.add("lost deals with a reason")
            if system != "onec" and self.ix.ladder(deal, deal.moves[-1].pipeline_id).refusal is not None:
                pops.add("lost deals closed in a pipeline with a conditional refusal stage")
        self.population.update(pops)
        self.count.update(kinds)

    def summary(self) -> dict[str, dict[str, Any]]:
        out = {}
        for tag in ALL_TAGS:
            pop = self.POPULATION[tag]
            n = self.population[pop]
            out[tag] = {
                "count": self.count[tag],
                "of": pop,
                "population": n,
                "rate": round(self.count[tag] / n, 4) if n else 0.0,
            }
        return out


class _RowWriter:
    def __init__(self, handle: TextIO, columns: list[str]):
        self.columns = columns
        self.csv = csv.writer(handle)
        self.csv.writerow(columns)

    def writerow(self, row: dict[str, str]) -> None:
        self.csv.writerow([row[c] for c in self.columns])


@contextmanager
def _writer(path: Path, columns: list[str]) -> Iterator[_RowWriter]:
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield _RowWriter(handle, columns)


@dataclass
class Truth:
    deals: list[dict[str, str]]
    transitions: list[dict[str, str]]
    dq_issues: list[dict[str, str]]
    summary: dict[str, Any]

    def deal(self, deal_key: str) -> dict[str, str]:
        for row in self.deals:
            if row["deal_key"] == deal_key:
                return row
        raise KeyError(f"no deal {deal_key} in the truth")


def load_truth(directory: str | Path) -> Truth:
    """Read the files ``write_truth`` wrote (values as strings, as in the CSV)."""
    root = Path(directory)
    missing = [
        n
        for n in ("deals.csv", "transitions.csv", "dq_issues.csv", "summary.json")
        if not (root / n).exists()
    ]
    if missing:
        raise FileNotFoundError(f"{root}: not a truth directory, missing {', '.join(missing)}")

    def read(name: str) -> list[dict[str, str]]:
        with (root / name).open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))

    return Truth(
        deals=read("deals.csv"),
        transitions=read("transitions.csv"),
        dq_issues=read("dq_issues.csv"),
        summary=json.loads((root / "summary.json").read_text(encoding="utf-8")),
    )
