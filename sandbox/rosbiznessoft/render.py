"""World -> the records a RosBiznesSoft installation serves, by structure.

``render(world, source_name, installation)`` returns, for every structure the installation
has, its rows as ``{field name: text}`` (everything is text in the XML API), sorted by
numeric id. The rows are first built by meaning (see ``installation.STRUCTURE_FIELDS``) and
then named the installation's way.

- Ids are the world's (numeric strings). Records the world has no id for get a stable
  numeric one: a legal entity's id is derived from its company's, a stage history row's from
  its deal's id and the move's position.
- A deal deleted in the world stays, with ``visible`` 0 and its modification date moved to
  the deletion ("Удаление" moves a record to the bin); a deal removed from the world is gone
  from the installation ("Стирание").
- Dates are ``Y-m-d H:i:s`` in the installation's local time (``Source.timezone``); an empty
  date, reference or text is ``""``.
- The stage result enumeration: process and conditional refusal stages are "open", won and
  lost stages "won"/"lost", written as the installation's numeric values.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

from sandbox.rosbiznessoft.installation import EXTRA_FIELDS, STRUCTURE_FIELDS, Installation
from sandbox.world.model import Deal, Manager, World

Row = dict[str, str]


def numeric_id(kind: str, key: str, base: int = 0) -> str:
    """A stable numeric id for a record the world has no id for."""
    if key.isdigit() and base:
        return str(base + int(key))
    digest = hashlib.sha256(f"{kind}|{key}".encode()).digest()
    return str(10_000_000 + int.from_bytes(digest[:4], "big") % 900_000_000)


def history_id(deal_id: str, position: int) -> str:
    if deal_id.isdigit() and position < 1000:
        return str(int(deal_id) * 1000 + position + 1)
    return numeric_id("history", f"{deal_id}|{position}")


def details_id(company_id: str) -> str:
    return numeric_id("details", company_id, base=500_000)


class Renderer:
    def __init__(self, world: World, source_name: str, installation: Installation):
        self.world, self.source_name, self.installation = world, source_name, installation
        self.zone = ZoneInfo(world.source(source_name).timezone)
        self.user_of: dict[str, str] = {
            m.key: m.user_ids[source_name] for m in world.managers if source_name in m.user_ids
        }

    def when(self, at: datetime | None) -> str:
        return "" if at is None else at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def user(self, manager_key: str | None) -> str:
        return self.user_of.get(manager_key or "", "")

    # -- by meaning -------------------------------------------------------------------------
    def deals(self) -> list[dict[str, str]]:
        return [self.deal(d) for d in self.world.deals_of(self.source_name)]

    def deal(self, d: Deal) -> dict[str, str]:
        modified = max(d.updated_at, d.deleted_at) if d.deleted_at else d.updated_at
        return {
            "id": d.id,
            "visible": "0" if d.deleted_at else "1",
            "deal_number": d.number or d.id,
            "deal_name": d.name,
            "deal_created": self.when(d.created_at),
            "deal_modified": self.when(modified),
            "deal_closed": self.when(d.closed_at),
            "deal_pipeline": d.pipeline_id,
            "deal_stage": d.stage_id,
            "deal_responsible": self.user(d.manager_key),
            "deal_company": d.company_id or "",
            "deal_amount": f"{d.amount:.2f}",
            "deal_currency": d.currency,
            "deal_loss_reason": d.loss_reason_id or "",
            "deal_comment": "",
        }

    def pipelines(self) -> list[dict[str, str]]:
        return [
            {"id": p.id, "visible": "1", "pipeline_name": p.name}
            for p in self.world.pipelines
            if p.source_name == self.source_name
        ]

    def stages(self) -> list[dict[str, str]]:
        rows = []
        for p in self.world.pipelines:
            if p.source_name != self.source_name:
                continue
            for s in p.stages:
                status = s.kind if s.kind in ("won", "lost") else "open"
                rows.append({"id": s.id, "visible": "1", "stage_name": s.name, "stage_pipeline": p.id,
                             "stage_sort": str(s.sort), "stage_result": self.installation.result_value(status)})  # fmt: skip
        return rows

    def loss_reasons(self) -> list[dict[str, str]]:
        return [
            {"id": r.id, "visible": "1", "loss_reason_name": r.name}
            for r in self.world.loss_reasons
            if r.source_name == self.source_name
        ]

    def stage_history(self) -> list[dict[str, str]]:
        rows = []
        for d in self.world.deals_of(self.source_name):
            for i, move in enumerate(sorted(d.moves, key=lambda m: m.at)):
                rows.append({"id": history_id(d.id, i), "history_deal": d.id, "history_stage": move.stage_id,
                             "history_date": self.when(move.at), "history_user": self.user(move.manager_key)})  # fmt: skip
        return rows

    def comments(self) -> list[dict[str, str]]:
        return [
            {"id": c.id, "visible": "1", "comment_deal": d.id, "comment_text": c.text,
             "comment_date": self.when(c.at), "comment_author": self.user(c.author_key)}
            for d in self.world.deals_of(self.source_name)
            for c in d.comments
        ]  # fmt: skip

    def users(self) -> list[dict[str, str]]:
        return [self.user_row(m) for m in self.world.managers if self.source_name in m.user_ids]

    def user_row(self, m: Manager) -> dict[str, str]:
        return {
            "id": m.user_ids[self.source_name],
            "visible": "1",
            "user_name": m.name,
            "user_email": m.emails_by_source.get(self.source_name, m.email),
            "user_active": "1" if m.active.get(self.source_name, True) else "0",
        }

    def companies(self) -> list[dict[str, str]]:
        return [
            {"id": c.id, "visible": "1", "company_name": c.name, "company_created": self.when(c.created_at),
             "company_modified": self.when(c.updated_at), "company_manager": ""}
            for c in self.world.companies
            if c.source_name == self.source_name
        ]  # fmt: skip

    def company_details(self) -> list[dict[str, str]]:
        return [
            {"id": details_id(c.id), "visible": "1", "details_company": c.id, "details_name": c.name,
             "details_inn": c.inn_rendered or "", "details_modified": self.when(c.updated_at)}
            for c in self.world.companies
            if c.source_name == self.source_name
        ]  # fmt: skip

    # -- named the installation's way -------------------------------------------------------
    def structure(self, meaning: str) -> list[Row]:
        by_meaning: list[dict[str, str]] = getattr(self, meaning)()
        names = [(m, self.installation.field(m)) for m in STRUCTURE_FIELDS[meaning]]
        extra = EXTRA_FIELDS.get(meaning, {})
        rows = [{**{name: row[m] for m, name in names if name}, **extra} for row in by_meaning]
        key = self.installation.field("id")
        return sorted(rows, key=lambda r: int(r[key]) if r[key].isdigit() else 0)


def render(world: World, source_name: str, installation: Installation) -> dict[str, list[Row]]:
    """structure name -> its rows, for every structure the installation has."""
    renderer = Renderer(world, source_name, installation)
    return {name: renderer.structure(meaning) for name, meaning in installation.served_structures().items()}


def render_structure(world: World, source_name: str, installation: Installation, meaning: str) -> list[Row]:
    return Renderer(world, source_name, installation).structure(meaning)


def all_fields(installation: Installation, meaning: str) -> list[str]:
    names = [installation.field(m) for m in STRUCTURE_FIELDS[meaning] if installation.field(m)]
    return names + list(EXTRA_FIELDS.get(meaning, {}))
