"""World -> the records a Creatio site serves over OData 4.

Every function takes the world and the connection name and returns the rows of one object
as plain values (``Decimal`` for money, ISO strings for dates), sorted by ``Id``.

- Deals are ``Opportunity`` records. A deal deleted in the world is gone from Creatio (a
  delete is physical there), and so are its stage history rows.
- Stages are one ``OpportunityStage`` lookup for the whole site (Creatio has no per-pipeline
  stages): the stages of the source's pipelines, numbered 1..n by ``Stage.sort``. Won stages
  are ``End`` and ``Successful``, lost stages ``End`` and not ``Successful``; process and
  conditional refusal stages are neither.
- The manager is a ``Contact`` (the employee's contact): ``Manager.user_ids[source]`` is that
  contact's Id. Each manager also has a system user (``SysAdminUnit``, type 4) pointing at it.
- ``OpportunityInStage`` rows are written by the rules of Creatio's ``OpportunityStageHelper``
  (see ``stage_rows``).
- Dates are UTC, ``2024-03-01T07:15:02Z`` (a fraction of a second only when there is one);
  an empty lookup is the all-zero GUID, an empty date ``null``, an empty text ``""``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.creatio.schema import EMPTY_GUID
from sandbox.world.model import Company, Deal, Manager, Stage, World

Row = dict[str, Any]

# when the site was installed: the lookups and the employees' records date from then
INSTALLED_AT = datetime(2020, 9, 1, 6, 0, tzinfo=UTC)
USER_TYPE = 4  # SysAdminUnitTypeValue of a user (0..3, 6 are organisations and roles)
ORGANISATION_TYPE = 0
SUPERVISOR = "Supervisor"
# Creatio's out-of-the-box contact types
EMPLOYEE_TYPE = "60733efc-f36b-1410-a883-16d83cab0980"
CUSTOMER_TYPE = "00783ef6-f36b-1410-a883-16d83cab0980"
OPPORTUNITY_TYPE = "e2d6b2dc-f1e7-4b11-a2ea-1a1b2a3a1d77"  # "Новые продажи"

_NAMESPACE = uuid.UUID("5b1c6c7e-0d52-4c3f-8a8e-2f0f4b1e7c21")


def derived_id(source_name: str, kind: str, natural_key: str) -> str:
    """A stable GUID for a record the world has no id for (system users, stage rows)."""
    return str(uuid.uuid5(_NAMESPACE, f"{source_name}|{kind}|{natural_key}"))


def when(at: datetime | None) -> str | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond:
        text += f".{at.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_when(text: str) -> datetime:
    """The inverse of ``when`` (and any ISO 8601 instant with a zone)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _base(row_id: str, created: datetime, modified: datetime, created_by: str, modified_by: str) -> Row:
    return {
        "Id": row_id,
        "CreatedOn": when(created),
        "CreatedById": created_by,
        "ModifiedOn": when(modified),
        "ModifiedById": modified_by,
        "ProcessListeners": 0,
    }


@dataclass
class StageInfo:
    stage: Stage
    number: int
    end: bool
    successful: bool
    max_probability: int


class Renderer:
    """Renders one Creatio site (one ``Source`` of the world)."""

    def __init__(self, world: World, source_name: str, inn_field: str | None = "INN"):
        self.world = world
        self.source_name = source_name
        self.inn_field = inn_field
        self.managers: dict[str, Manager] = {m.key: m for m in world.managers}
        self.supervisor_contact = derived_id(source_name, "contact", SUPERVISOR)
        self.stages = self._stage_infos()

    # -- helpers --------------------------------------------------------------------------
    def _stage_infos(self) -> dict[str, StageInfo]:
        seen: dict[str, Stage] = {}
        for pipeline in self.world.pipelines:
            if pipeline.source_name == self.source_name:
                for stage in pipeline.stages:
                    seen.setdefault(stage.id, stage)
        ordered = sorted(seen.values(), key=lambda s: (s.sort, s.id))
        process = [s for s in ordered if s.kind in ("process", "conditional_refusal")]
        infos = {}
        for number, stage in enumerate(ordered, start=1):
            if stage.kind == "won":
                probability = 100
            elif stage.kind == "lost":
                probability = 0
            else:
                probability = round(100 * (process.index(stage) + 1) / (len(process) + 1))
            infos[stage.id] = StageInfo(
                stage, number, stage.kind in ("won", "lost"), stage.kind == "won", probability
            )
        return infos

    def contact_of(self, manager_key: str | None) -> str:
        """The Contact Id of a manager in this site; the Supervisor's for a robot or a stranger."""
        manager = self.managers.get(manager_key or "")
        return (manager.user_ids.get(self.source_name) if manager else None) or self.supervisor_contact

    def deals(self) -> list[Deal]:
        return [d for d in self.world.deals_of(self.source_name) if d.deleted_at is None]

    def companies(self) -> list[Company]:
        return [c for c in self.world.companies if c.source_name == self.source_name]

    def site_managers(self) -> list[Manager]:
        return [m for m in self.world.managers if self.source_name in m.user_ids]

    # -- objects --------------------------------------------------------------------------
    def opportunities(self) -> list[Row]:
        rows = []
        for deal in self.deals():
            moves = sorted(deal.moves, key=lambda m: m.at)
            first = moves[0] if moves else None
            last_touch = max(
                [deal.updated_at, *(m.at for m in moves), *(c.at for c in deal.comments)]
                + ([deal.closed_at] if deal.closed_at else [])
            )
            info = self.stages.get(deal.stage_id)
            last_by = moves[-1].by_user_key if moves else None
            row = _base(
                deal.id,
                deal.created_at,
                last_touch,
                self.contact_of(first.by_user_key if first else deal.manager_key),
                self.contact_of(last_by),
            )
            comments = sorted(deal.comments, key=lambda c: c.at)
            row.update(
                {
                    "Title": deal.name,
                    "TypeId": OPPORTUNITY_TYPE,
                    "StageId": deal.stage_id,
                    "DueDate": when(deal.closed_at) if deal.status != "open" else None,
                    "CloseReasonId": deal.loss_reason_id or EMPTY_GUID,
                    "OwnerId": self.contact_of(deal.manager_key),
                    "Notes": "\n".join(c.text for c in comments),
                    "AccountId": deal.company_id or EMPTY_GUID,
                    "ContactId": deal.contact_ids[0] if deal.contact_ids else EMPTY_GUID,
                    "CategoryId": EMPTY_GUID,
                    "MoodId": EMPTY_GUID,
                    "IsPrimary": False,
                    "PartnerId": EMPTY_GUID,
                    "Budget": Decimal(0),
                    "Probability": info.max_probability if info else 0,
                    "Amount": deal.amount,
                    "SourceId": EMPTY_GUID,
                    "ResponsibleDepartmentId": EMPTY_GUID,
                    "Weaknesses": "",
                    "Strength": "",
                    "Tactic": "",
                    "CheckDate": None,
                    "ProcessId": EMPTY_GUID,
                    "WinnerId": EMPTY_GUID,
                    "Completeness": 0,
                    "Description": "",
                    "MoodValue": 0,
                    "ByProcess": False,
                }
            )
            rows.append(row)
        return sorted(rows, key=lambda r: r["Id"])

    def stage_rows(self) -> list[Row]:
        """``OpportunityInStage`` as ``OpportunityStageHelper`` writes it, move by move:

        - the deal's first move writes the row of its first stage;
        - a move to another stage sets ``DueDate`` of the current row to the moment of the move;
        - a move forward inserts a row for every skipped stage in between that is not final
          (``End``), with ``StartDate = DueDate`` = the moment of the move;
        - a move backward marks ``Historical`` every row of the deal whose stage ``Number`` is at
          or after the new stage's;
        - the new stage's row starts at the moment of the move plus ``Number`` seconds; a final
          stage's row ends when it starts;
        - a move that keeps the stage (a new responsible) rewrites ``OwnerId`` on the current row.

        ``CreatedOn`` of a row is the moment it was inserted, ``ModifiedOn`` its latest write.
        """
        out: list[Row] = []
        for deal in self.deals():
            out.extend(self._deal_stage_rows(deal))
        return sorted(out, key=lambda r: r["Id"])

    def _deal_stage_rows(self, deal: Deal) -> list[Row]:
        rows: list[Row] = []
        current: Row | None = None
        ordered = sorted(self.stages.values(), key=lambda s: s.number)

        def insert(
            stage_id: str, at: datetime, start: datetime, due: datetime | None, owner: str, by: str
        ) -> Row:
            row = _base(derived_id(self.source_name, "in-stage", f"{deal.id}|{len(rows)}"), at, at, by, by)
            row.update(
                {
                    "OpportunityId": deal.id,
                    "StageId": stage_id,
                    "StartDate": when(start),
                    "DueDate": when(due),
                    "OwnerId": owner,
                    "Comments": "",
                    "Historical": False,
                }
            )
            rows.append(row)
            return row

        def touch(row: Row, at: datetime, by: str) -> None:
            row["ModifiedOn"], row["ModifiedById"] = when(at), by

        for move in sorted(deal.moves, key=lambda m: m.at):
            info = self.stages.get(move.stage_id)
            if info is None:
                continue  # a stage of another site: nothing Creatio would write
            at, owner, by = move.at, self.contact_of(move.manager_key), self.contact_of(move.by_user_key)
            start = at + timedelta(seconds=info.number)
            if current is None:
                current = insert(move.stage_id, at, start, start if info.end else None, owner, by)
                continue
            if current["StageId"] == move.stage_id:
                if current["OwnerId"] != owner:
                    current["OwnerId"] = owner
                    touch(current, at, by)
                continue
            old = self.stages[current["StageId"]]
            current["DueDate"] = when(at)
            touch(current, at, by)
            if info.number > old.number:
                for skipped in ordered:
                    if old.number < skipped.number < info.number and not skipped.end:
                        insert(skipped.stage.id, at, at, at, owner, by)
            else:
                for row in rows:
                    if self.stages[row["StageId"]].number >= info.number and not row["Historical"]:
                        row["Historical"] = True
                        touch(row, at, by)
            current = insert(move.stage_id, at, start, start if info.end else None, owner, by)
        return rows

    def opportunity_stages(self) -> list[Row]:
        rows = []
        supervisor = self.supervisor_contact
        for info in self.stages.values():
            row = _base(info.stage.id, INSTALLED_AT, INSTALLED_AT, supervisor, supervisor)
            row.update(
                {
                    "Name": info.stage.name,
                    "Description": "",
                    "End": info.end,
                    "Successful": info.successful,
                    "Number": info.number,
                    "MaxProbability": info.max_probability,
                    "NextStepTerm": 0 if info.end else 3,
                    "ShowInFunnel": not info.end,
                    "Color": "#0058EF" if not info.end else ("#1AA360" if info.successful else "#D92D20"),
                    "ShowInProgressBar": True,
                }
            )
            rows.append(row)
        return sorted(rows, key=lambda r: r["Id"])

    def close_reasons(self) -> list[Row]:
        rows = []
        supervisor = self.supervisor_contact
        for reason in self.world.loss_reasons:
            if reason.source_name != self.source_name:
                continue
            created = reason.created_at or INSTALLED_AT
            row = _base(reason.id, created, created, supervisor, supervisor)
            row.update({"Name": reason.name, "Description": ""})
            rows.append(row)
        return sorted(rows, key=lambda r: r["Id"])

    def accounts(self) -> list[Row]:
        rows = []
        supervisor = self.supervisor_contact
        for company in self.companies():
            row = _base(company.id, company.created_at, company.updated_at, supervisor, supervisor)
            row.update(
                {
                    "Name": company.name,
                    "AlternativeName": "",
                    "Code": "",
                    "OwnerId": EMPTY_GUID,
                    "PrimaryContactId": company.contact_ids[0] if company.contact_ids else EMPTY_GUID,
                    "TypeId": EMPTY_GUID,
                    "Phone": "",
                    "Web": "",
                }
            )
            if self.inn_field:
                row[self.inn_field] = company.inn_rendered or ""
            rows.append(row)
        return sorted(rows, key=lambda r: r["Id"])

    def contacts(self) -> list[Row]:
        """The employees' contacts (the managers and the Supervisor) and the customers' contacts."""
        supervisor = self.supervisor_contact
        companies = {c.id: c for c in self.companies()}
        rows = []
        employees = [(supervisor, SUPERVISOR, "")] + [
            (m.user_ids[self.source_name], m.name, m.emails_by_source.get(self.source_name, m.email))
            for m in self.site_managers()
        ]
        for contact_id, name, email in employees:
            row = _base(contact_id, INSTALLED_AT, INSTALLED_AT, supervisor, supervisor)
            row.update(
                {
                    "Name": name,
                    "OwnerId": EMPTY_GUID,
                    "AccountId": EMPTY_GUID,
                    "TypeId": EMPLOYEE_TYPE,
                    "JobTitle": "Менеджер по продажам" if name != SUPERVISOR else "",
                    "Email": email,
                    "Phone": "",
                    "MobilePhone": "",
                }
            )
            rows.append(row)
        for contact in self.world.contacts:
            if contact.source_name != self.source_name:
                continue
            company = companies.get(contact.company_id or "")
            created = company.created_at if company else INSTALLED_AT
            modified = company.updated_at if company else INSTALLED_AT
            row = _base(contact.id, created, modified, supervisor, supervisor)
            row.update(
                {
                    "Name": contact.name,
                    "OwnerId": EMPTY_GUID,
                    "AccountId": contact.company_id or EMPTY_GUID,
                    "TypeId": CUSTOMER_TYPE,
                    "JobTitle": "",
                    "Email": contact.email,
                    "Phone": "",
                    "MobilePhone": contact.phone,
                }
            )
            rows.append(row)
        return sorted(rows, key=lambda r: r["Id"])

    def sys_admin_units(self) -> list[Row]:
        """The system users (type 4), each pointing at its contact, and the organisation root."""
        supervisor = self.supervisor_contact
        rows = []
        org = _base(derived_id(self.source_name, "admin-unit", "All employees"), INSTALLED_AT, INSTALLED_AT,
                    supervisor, supervisor)  # fmt: skip
        org.update(_unit("All employees", EMPTY_GUID, ORGANISATION_TYPE, True, ""))
        rows.append(org)
        users = [(SUPERVISOR, SUPERVISOR, supervisor, True, "")] + [
            (
                m.key,
                m.emails_by_source.get(self.source_name, m.email).split("@", 1)[0],
                m.user_ids[self.source_name],
                m.active.get(self.source_name, True),
                m.emails_by_source.get(self.source_name, m.email),
            )
            for m in self.site_managers()
        ]
        for key, login, contact_id, active, email in users:
            row = _base(derived_id(self.source_name, "admin-unit", key), INSTALLED_AT, INSTALLED_AT,
                        supervisor, supervisor)  # fmt: skip
            row.update(_unit(login, contact_id, USER_TYPE, active, email))
            rows.append(row)
        return sorted(rows, key=lambda r: r["Id"])


def _unit(name: str, contact_id: str, unit_type: int, active: bool, email: str) -> Row:
    return {
        "Name": name,
        "Description": "",
        "ContactId": contact_id,
        "AccountId": EMPTY_GUID,
        "ParentRoleId": EMPTY_GUID,
        "SysAdminUnitTypeValue": unit_type,
        "Active": active,
        "ConnectionType": 0,
        "Email": email,
    }


RENDERERS = {
    "Opportunity": Renderer.opportunities,
    "OpportunityInStage": Renderer.stage_rows,
    "OpportunityStage": Renderer.opportunity_stages,
    "OpportunityCloseReason": Renderer.close_reasons,
    "Account": Renderer.accounts,
    "Contact": Renderer.contacts,
    "SysAdminUnit": Renderer.sys_admin_units,
}


def render(world: World, source_name: str, set_name: str, inn_field: str | None = "INN") -> list[Row]:
    return RENDERERS[set_name](Renderer(world, source_name, inn_field))
