"""The world as one amoCRM account shows it through API v4: leads, pipelines with statuses,
loss reasons, the status-change events, users, common notes, contacts and companies.

Rendering reads the World only; it knows nothing of HTTP except the base URL that ``_links``
point to. Records stamped after ``world.now`` do not exist yet and are not rendered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.world.model import Company, Contact, Deal, Manager, Pipeline, World

WON_STATUS_ID = 142
LOST_STATUS_ID = 143
WON_STATUS_NAME = "Успешно реализовано"
LOST_STATUS_NAME = "Закрыто и не реализовано"
UNSORTED_STATUS_NAME = "Неразобранное"
DUPLICATED_EVENT = "duplicated_event"  # the defect: one status change served twice, under two ids
STATUS_COLORS = ["#99ccff", "#ffff99", "#ffcc66", "#fffd7f", "#deff81", "#87f2c0", "#f9deff", "#ffc8c8"]
_ULID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, as amoCRM event ids use


@dataclass(frozen=True)
class Account:
    """The amoCRM account a connection talks to."""

    id: int
    subdomain: str
    base_url: str  # where this account's API is served

    def links(self, path: str) -> dict[str, Any]:
        """``{"self": {"href": …}}`` for a record at ``path``."""
        return {"self": {"href": f"{self.base_url}{path}"}}


@dataclass(frozen=True)
class CustomFieldIds:
    phone: int
    email: int
    inn: int


@dataclass
class Rendered:
    """Every record the account serves, in the API's own shape, at one ``world.now``."""

    leads: list[dict[str, Any]] = field(default_factory=list)  # live, by id
    deleted_leads: list[dict[str, Any]] = field(default_factory=list)  # with=only_deleted
    lead_contacts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    lead_loss_reason: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    loss_reasons: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first
    notes: list[dict[str, Any]] = field(default_factory=list)  # by id
    users: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    companies: list[dict[str, Any]] = field(default_factory=list)
    company_contacts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    custom_fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # entity -> fields


class RenderError(ValueError):
    """The world holds something this account cannot show (a non-integer id, an unknown user)."""


def ts(moment: datetime) -> int:
    """Unix seconds; a naive datetime is UTC (the world's clock is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def as_id(value: str, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RenderError(f"amoCRM ids are integers, but {what} has id {value!r}") from None


def account_for(world: World, source_name: str, base_url: str) -> Account:
    digest = hashlib.sha256(f"amocrm-account|{world.seed}|{source_name}".encode()).digest()
    subdomain = source_name.removeprefix("amo_").replace("_", "-") or source_name
    return Account(
        id=28_000_000 + int.from_bytes(digest[:4], "big") % 1_000_000, subdomain=subdomain, base_url=base_url
    )


def field_ids(account: Account) -> CustomFieldIds:
    base = 300_000 + account.id % 100_000 * 10
    return CustomFieldIds(phone=base + 1, email=base + 2, inn=base + 3)


def event_id(seed: int, source_name: str, at: datetime, *parts: object) -> str:
    """A ULID-like id (26 Crockford base32 characters, time first), stable for a seed."""
    millis = ts(at) * 1000
    head = ""
    for _ in range(10):
        head = _ULID_ALPHABET[millis % 32] + head
        millis //= 32
    digest = hashlib.sha256("|".join(map(str, (seed, source_name, *parts))).encode()).digest()
    tail = "".join(_ULID_ALPHABET[b % 32] for b in digest[:16])
    return head + tail


def price(amount: Decimal) -> int:
    """amoCRM keeps a lead's sale as an integer in the account's currency."""
    return int(Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class _Users:
    def __init__(self, managers: list[Manager], source_name: str):
        self.by_key: dict[str, int] = {}
        self.managers: list[tuple[int, Manager]] = []
        for m in managers:
            if source_name in m.user_ids:
                uid = as_id(m.user_ids[source_name], f"user of manager {m.key}")
                self.by_key[m.key] = uid
                self.managers.append((uid, m))
        self.managers.sort(key=lambda pair: pair[0])

    def of(self, manager_key: str | None, what: str, robot: bool = False) -> int:
        """The user id of a manager; ``robot=True`` lets ``None`` stand for a robot (``0``)."""
        if manager_key is None and robot:
            return 0
        if manager_key not in self.by_key:
            raise RenderError(f"{what}: manager {manager_key!r} has no user in this account")
        return self.by_key[manager_key]


def render(world: World, source_name: str, account: Account) -> Rendered:
    now = world.now
    users = _Users(world.managers, source_name)
    out = Rendered()
    out.users = [_user(uid, m, source_name, account) for uid, m in users.managers]
    ids = field_ids(account)

    pipelines = sorted(
        (p for p in world.pipelines if p.source_name == source_name),
        key=lambda p: (p.sort, as_id(p.id, "pipeline")),
    )
    out.pipelines = [_pipeline(p, account) for p in pipelines]

    reasons = sorted(
        (r for r in world.loss_reasons if r.source_name == source_name),
        key=lambda r: as_id(r.id, "loss reason"),
    )
    deals = [d for d in world.deals_of(source_name) if d.created_at <= now]
    first_deal_at = min((d.created_at for d in deals), default=now)
    reason_records: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(reasons):
        created = ts(r.created_at or first_deal_at)
        rid = as_id(r.id, "loss reason")
        reason_records[r.id] = {
            "id": rid,
            "name": r.name,
            "sort": 100_000 + 10_000 * i,
            "created_at": created,
            "updated_at": created,
            "_links": account.links(f"/api/v4/leads/loss_reasons/{rid}"),
        }
    out.loss_reasons = list(reason_records.values())

    for deal in sorted(deals, key=lambda d: as_id(d.id, "deal")):
        lead_id = as_id(deal.id, "deal")
        if deal.deleted_at is not None and deal.deleted_at <= now:
            out.deleted_leads.append(
                {
                    "id": lead_id,
                    "updated_at": ts(deal.deleted_at),
                    "is_deleted": True,
                    "account_id": account.id,
                    "_links": account.links(f"/api/v4/leads/{lead_id}"),
                }
            )
        else:
            out.leads.append(_lead(deal, lead_id, users, account))
            out.lead_contacts[lead_id] = [
                {"id": as_id(cid, "contact"), "is_main": i == 0} for i, cid in enumerate(deal.contact_ids)
            ]
            reason = reason_records.get(deal.loss_reason_id) if deal.loss_reason_id else None
            out.lead_loss_reason[lead_id] = [reason] if reason else []
        out.events.extend(_events(world.seed, source_name, deal, lead_id, users, account, now))
        out.notes.extend(_notes(deal, lead_id, users, account, now))
    out.events.sort(key=lambda e: (e["created_at"], e["id"]), reverse=True)
    out.notes.sort(key=lambda n: n["id"])

    contacts = {c.id: c for c in world.contacts if c.source_name == source_name}
    companies = [c for c in world.companies if c.source_name == source_name and c.created_at <= now]
    deals_by_contact: dict[str, list[Deal]] = {}
    deals_by_company: dict[str, list[Deal]] = {}
    for deal in deals:
        for cid in deal.contact_ids:
            deals_by_contact.setdefault(cid, []).append(deal)
        if deal.company_id:
            deals_by_company.setdefault(deal.company_id, []).append(deal)
    company_by_id = {c.id: c for c in companies}
    default_user = users.managers[0][0] if users.managers else 0

    for contact in sorted(contacts.values(), key=lambda c: as_id(c.id, "contact")):
        rec = _contact(contact, deals_by_contact, company_by_id, users, default_user, ids, account, now)
        if rec is not None:
            out.contacts.append(rec)
    for company in sorted(companies, key=lambda c: as_id(c.id, "company")):
        company_id = as_id(company.id, "company")
        linked = [contacts[c] for c in company.contact_ids if c in contacts]
        out.companies.append(_company(company, linked, deals_by_company, users, default_user, ids, account))
        out.company_contacts[company_id] = [
            {"id": as_id(c.id, "contact"), "_links": account.links(f"/api/v4/contacts/{c.id}")}
            for c in linked
        ]
    out.custom_fields = _custom_fields(ids, account)
    return out


def _user(uid: int, m: Manager, source_name: str, account: Account) -> dict[str, Any]:
    full = {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"}
    return {
        "id": uid,
        "name": m.name,
        "email": m.emails_by_source.get(source_name, m.email),
        "lang": "ru",
        "rights": {
            "leads": dict(full),
            "contacts": dict(full),
            "companies": dict(full),
            "tasks": {"edit": "A", "delete": "A"},
            "mail_access": False,
            "catalog_access": False,
            "files_access": False,
            "status_rights": [],
            "is_admin": False,
            "is_free": False,
            "is_active": m.active.get(source_name, True),
            "group_id": None,
            "role_id": None,
        },
        "_links": account.links(f"/api/v4/users/{uid}"),
    }


def _status(
    sid: int, name: str, sort: int, pid: int, color: str, editable: bool, kind: int, account: Account
):
    return {
        "id": sid,
        "name": name,
        "sort": sort,
        "is_editable": editable,
        "pipeline_id": pid,
        "color": color,
        "type": kind,
        "account_id": account.id,
        "_links": account.links(f"/api/v4/leads/pipelines/{pid}/statuses/{sid}"),
    }


def _pipeline(p: Pipeline, account: Account) -> dict[str, Any]:
    """Statuses in the pipeline's order. The world's "Неразобранное" stage is the unsorted
    status (``type: 1``); a pipeline without one gets it, as every amoCRM pipeline has it, and
    so are the system statuses 142 and 143."""
    pid = as_id(p.id, "pipeline")
    stage_ids = {as_id(s.id, f"stage of pipeline {p.id}") for s in p.stages}
    statuses = []
    has_unsorted = False
    for i, s in enumerate(sorted(p.stages, key=lambda s: s.sort)):
        sid = as_id(s.id, f"stage of pipeline {p.id}")
        if sid == WON_STATUS_ID:
            statuses.append(_status(sid, s.name, s.sort, pid, "#CCFF66", False, 0, account))
        elif sid == LOST_STATUS_ID:
            statuses.append(_status(sid, s.name, s.sort, pid, "#D5D8DB", False, 0, account))
        elif s.name == UNSORTED_STATUS_NAME and not has_unsorted:
            has_unsorted = True
            statuses.append(_status(sid, s.name, s.sort, pid, "#c1c1c1", False, 1, account))
        else:
            color = STATUS_COLORS[i % len(STATUS_COLORS)]
            statuses.append(_status(sid, s.name, s.sort, pid, color, True, 0, account))
    if not has_unsorted:
        unsorted_id = pid * 100 + 1
        while unsorted_id in stage_ids:
            unsorted_id += 1
        low = min((s.sort for s in p.stages), default=10)
        statuses.append(
            _status(unsorted_id, UNSORTED_STATUS_NAME, low - 1, pid, "#c1c1c1", False, 1, account)
        )
    if WON_STATUS_ID not in stage_ids:
        statuses.append(_status(WON_STATUS_ID, WON_STATUS_NAME, 10000, pid, "#CCFF66", False, 0, account))
    if LOST_STATUS_ID not in stage_ids:
        statuses.append(_status(LOST_STATUS_ID, LOST_STATUS_NAME, 11000, pid, "#D5D8DB", False, 0, account))
    statuses.sort(key=lambda s: (s["sort"], s["id"]))
    return {
        "id": pid,
        "name": p.name,
        "sort": p.sort,
        "is_main": p.is_main,
        "is_unsorted_on": True,
        "is_archive": False,
        "account_id": account.id,
        "_links": account.links(f"/api/v4/leads/pipelines/{pid}"),
        "_embedded": {"statuses": statuses},
    }


def _lead(deal: Deal, lead_id: int, users: _Users, account: Account) -> dict[str, Any]:
    what = f"deal {deal.id}"
    first = deal.moves[0] if deal.moves else None
    last = deal.moves[-1] if deal.moves else None
    companies = []
    if deal.company_id:
        cid = as_id(deal.company_id, f"company of {what}")
        companies.append({"id": cid, "_links": account.links(f"/api/v4/companies/{cid}")})
    return {
        "id": lead_id,
        "name": deal.name,
        "price": price(deal.amount),
        "responsible_user_id": users.of(deal.manager_key, what),
        "group_id": 0,
        "status_id": as_id(deal.stage_id, f"stage of {what}"),
        "pipeline_id": as_id(deal.pipeline_id, f"pipeline of {what}"),
        "loss_reason_id": as_id(deal.loss_reason_id, f"loss reason of {what}")
        if deal.loss_reason_id
        else None,
        "created_by": users.of(first.by_user_key, what, robot=True) if first else 0,
        "updated_by": users.of(last.by_user_key, what, robot=True) if last else 0,
        "created_at": ts(deal.created_at),
        "updated_at": ts(deal.updated_at),
        "closed_at": ts(deal.closed_at) if deal.closed_at else None,
        "is_deleted": False,
        "custom_fields_values": None,
        "account_id": account.id,
        "_links": account.links(f"/api/v4/leads/{lead_id}"),
        "_embedded": {"tags": [], "companies": companies},
    }


def status_changes(deal: Deal, now: datetime) -> list[tuple[int, Any, Any]]:
    """(move index, move before, move after) for every change of status up to ``now``. The
    first move is the deal's creation: amoCRM records it as ``lead_added``, not as a status
    change, so it has no ``lead_status_changed`` event. A move that keeps both the pipeline
    and the status (a change of responsible only) is not a status change either."""
    changes = []
    for i in range(1, len(deal.moves)):
        before, after = deal.moves[i - 1], deal.moves[i]
        if after.at > now:
            break
        if (before.pipeline_id, before.stage_id) != (after.pipeline_id, after.stage_id):
            changes.append((i, before, after))
    return changes


def _events(
    seed: int, source_name: str, deal: Deal, lead_id: int, users: _Users, account: Account, now: datetime
) -> list[dict[str, Any]]:
    what = f"status change of deal {deal.id}"
    events = []
    for index, before, after in status_changes(deal, now):
        eid = event_id(seed, source_name, after.at, "lead_status_changed", deal.id, index)
        events.append(
            {
                "id": eid,
                "type": "lead_status_changed",
                "entity_id": lead_id,
                "entity_type": "lead",
                "created_by": users.of(after.by_user_key, what, robot=True),
                "created_at": ts(after.at),
                "value_after": [
                    {
                        "lead_status": {
                            "id": as_id(after.stage_id, what),
                            "pipeline_id": as_id(after.pipeline_id, what),
                        }
                    }
                ],
                "value_before": [
                    {
                        "lead_status": {
                            "id": as_id(before.stage_id, what),
                            "pipeline_id": as_id(before.pipeline_id, what),
                        }
                    }
                ],
                "account_id": account.id,
                "_links": account.links(f"/api/v4/events/{eid}"),
                "_embedded": {"entity": {"id": lead_id, "_links": account.links(f"/api/v4/leads/{lead_id}")}},
            }
        )
    if DUPLICATED_EVENT in deal.defects and events:
        original = events[0]  # the first change: later ones are appended, the twin stays as it was
        twin_id = event_id(
            seed, source_name, datetime.fromtimestamp(original["created_at"], UTC), "twin", deal.id
        )
        events.append({**original, "id": twin_id, "_links": account.links(f"/api/v4/events/{twin_id}")})
    return events


def note_id(comment_id: str, deal_id: str) -> int:
    if comment_id.isdigit():
        return int(comment_id)
    digest = hashlib.sha256(f"note|{deal_id}|{comment_id}".encode()).digest()
    return 100_000_000 + int.from_bytes(digest[:4], "big") % 900_000_000


def _notes(deal: Deal, lead_id: int, users: _Users, account: Account, now: datetime) -> list[dict[str, Any]]:
    if deal.deleted_at is not None and deal.deleted_at <= now:
        return []  # the notes of a deleted lead go with it
    notes = []
    for c in deal.comments:
        if c.at > now:
            continue
        nid = note_id(c.id, deal.id)
        author = users.of(c.author_key, f"comment {c.id} of deal {deal.id}", robot=True)
        notes.append(
            {
                "id": nid,
                "entity_id": lead_id,
                "created_by": author,
                "updated_by": author,
                "created_at": ts(c.at),
                "updated_at": ts(c.at),
                "responsible_user_id": author,
                "group_id": 0,
                "note_type": "common",
                "params": {"text": c.text},
                "account_id": account.id,
                "_links": account.links(f"/api/v4/leads/{lead_id}/notes/{nid}"),
            }
        )
    return notes


def _multitext(field_id: int, name: str, code: str, values: list[str]) -> dict[str, Any]:
    return {
        "field_id": field_id,
        "field_name": name,
        "field_code": code,
        "field_type": "multitext",
        "values": [{"value": v, "enum_id": field_id * 10 + 1, "enum_code": "WORK"} for v in values],
    }


def _contact(
    contact: Contact,
    deals_by_contact: dict[str, list[Deal]],
    company_by_id: dict[str, Company],
    users: _Users,
    default_user: int,
    ids: CustomFieldIds,
    account: Account,
    now: datetime,
) -> dict[str, Any] | None:
    """A contact has no dates of its own in the world: it appears with its company or its
    first deal, whichever is first."""
    deals = sorted(deals_by_contact.get(contact.id, []), key=lambda d: d.created_at)
    company = company_by_id.get(contact.company_id) if contact.company_id else None
    births = [d.created_at for d in deals] + ([company.created_at] if company else [])
    if not births:
        return None  # nothing in the account knows this contact yet
    created = min(births)
    if created > now:
        return None
    cid = as_id(contact.id, "contact")
    first, _, last = contact.name.partition(" ")
    fields = []
    if contact.phone:
        fields.append(_multitext(ids.phone, "Телефон", "PHONE", [contact.phone]))
    if contact.email:
        fields.append(_multitext(ids.email, "Email", "EMAIL", [contact.email]))
    responsible = users.of(deals[0].manager_key, f"contact {contact.id}") if deals else default_user
    embedded_companies = []
    if company:
        company_id = as_id(company.id, "company")
        embedded_companies.append(
            {"id": company_id, "_links": account.links(f"/api/v4/companies/{company_id}")}
        )
    return {
        "id": cid,
        "name": contact.name,
        "first_name": first,
        "last_name": last,
        "responsible_user_id": responsible,
        "group_id": 0,
        "created_by": 0,
        "updated_by": 0,
        "created_at": ts(created),
        "updated_at": ts(created),
        "closest_task_at": None,
        "is_deleted": False,
        "is_unsorted": False,
        "custom_fields_values": fields or None,
        "account_id": account.id,
        "_links": account.links(f"/api/v4/contacts/{cid}"),
        "_embedded": {"tags": [], "companies": embedded_companies},
    }


def _company(
    company: Company,
    contacts: list[Contact],
    deals_by_company: dict[str, list[Deal]],
    users: _Users,
    default_user: int,
    ids: CustomFieldIds,
    account: Account,
) -> dict[str, Any]:
    """INN and phones live in custom fields: the INN as this system writes it, the phones of
    the company's contacts."""
    company_id = as_id(company.id, "company")
    fields = []
    phones = [c.phone for c in contacts if c.phone]
    if phones:
        fields.append(_multitext(ids.phone, "Телефон", "PHONE", phones))
    if company.inn_rendered:
        fields.append(
            {
                "field_id": ids.inn,
                "field_name": "ИНН",
                "field_code": None,
                "field_type": "text",
                "values": [{"value": company.inn_rendered}],
            }
        )
    deals = sorted(deals_by_company.get(company.id, []), key=lambda d: d.created_at)
    responsible = users.of(deals[0].manager_key, f"company {company.id}") if deals else default_user
    return {
        "id": company_id,
        "name": company.name,
        "responsible_user_id": responsible,
        "group_id": 0,
        "created_by": 0,
        "updated_by": 0,
        "created_at": ts(company.created_at),
        "updated_at": ts(company.updated_at),
        "closest_task_at": None,
        "is_deleted": False,
        "custom_fields_values": fields or None,
        "account_id": account.id,
        "_links": account.links(f"/api/v4/companies/{company_id}"),
        "_embedded": {"tags": []},
    }


def _custom_fields(ids: CustomFieldIds, account: Account) -> dict[str, list[dict[str, Any]]]:
    def definition(fid: int, name: str, kind: str, code: str | None, entity: str, sort: int, enums: bool):
        return {
            "id": fid,
            "name": name,
            "type": kind,
            "account_id": account.id,
            "code": code,
            "sort": sort,
            "is_api_only": False,
            "enums": [{"id": fid * 10 + 1, "value": "WORK", "sort": 2}] if enums else None,
            "group_id": None,
            "required_statuses": [],
            "is_deletable": code is None,
            "is_predefined": code is not None,
            "entity_type": entity,
            "_links": account.links(f"/api/v4/{entity}/custom_fields/{fid}"),
        }

    return {
        "leads": [],
        "contacts": [
            definition(ids.phone, "Телефон", "multitext", "PHONE", "contacts", 4, True),
            definition(ids.email, "Email", "multitext", "EMAIL", "contacts", 6, True),
        ],
        "companies": [
            definition(ids.phone, "Телефон", "multitext", "PHONE", "companies", 4, True),
            definition(ids.inn, "ИНН", "text", None, "companies", 510, False),
        ],
    }
