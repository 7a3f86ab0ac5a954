"""The amoCRM API v4 stand-in, over real HTTP: paging, filters, the event log, OAuth, limits.

Every count is computed from the World here, independently of the stand-in's rendering code.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from sandbox.amocrm import AmoCRMStandIn
from sandbox.standin import Faults
from sandbox.world.generate import generate
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

AMO = "amo_retail"
LEAD_SAMPLE_KEYS = {
    "id",
    "name",
    "price",
    "responsible_user_id",
    "group_id",
    "status_id",
    "pipeline_id",
    "loss_reason_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "closed_at",
    "is_deleted",
    "custom_fields_values",
    "account_id",
    "_embedded",
}


# -- a world built by hand --------------------------------------------------------------------
def _pipelines() -> list[Pipeline]:
    def st(sid: str, name: str, sort: int, kind: str = "process") -> Stage:
        return Stage(sid, name, kind, sort, None)  # type: ignore[arg-type]

    retail = Pipeline(
        "7670334",
        AMO,
        "Розница",
        [
            st("63384101", "Неразобранное", 10),
            st("63384102", "Первичный контакт", 20),
            st("63384103", "Квалификация", 30),
            st("63384104", "КП отправлено", 40),
            st("63384105", "Переговоры", 50),
            st("63384107", "Условный отказ", 70, "conditional_refusal"),
            st("142", "Успешно реализовано", 10000, "won"),
            st("143", "Закрыто и не реализовано", 11000, "lost"),
        ],
        sort=1,
        is_main=True,
    )
    wholesale = Pipeline(
        "7670335",
        AMO,
        "Опт",
        [
            st("63384202", "Переговоры", 20),
            st("63384204", "КП отправлено", 40),
            st("142", "Успешно реализовано", 10000, "won"),
            st("143", "Закрыто и не реализовано", 11000, "lost"),
        ],
        sort=2,
    )
    other = Pipeline("0", "b24_wholesale", "Общая", [Stage("NEW", "Новая", "process", 10, None)])
    return [retail, wholesale, other]


def hand_world(seed: int, amo_deals: int, future_deals: int = 0) -> World:
    """An amoCRM account with two pipelines, deleted deals, lost deals with and without a
    reason and a comment, robot moves, a pipeline change and the duplicated-event defect;
    ``future_deals`` deals are created after ``world.now``."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    managers = [
        Manager(
            key=f"m{i:02d}",
            name=name,
            email=f"m{i}@example.com",
            strengths={},
            user_ids={AMO: str(1_000_000 + i)},
            emails_by_source={AMO: f"M{i}@Example.com"},
            active={AMO: i != 4},
        )
        for i, name in enumerate(
            ["Иванов Иван", "Петров Пётр", "Сидорова Анна", "Кузнецов Олег", "Орлова Вера"]
        )
    ]
    managers.append(Manager("m90", "Только Битрикс", "b@example.com", {}, {"b24_wholesale": "7"}))
    pipelines = _pipelines()
    reasons = [
        LossReason(str(4203741 + i), AMO, name, None, base)
        for i, name in enumerate(["Нет денег", "Дорого", "Выбрали конкурента", "Не выходит на связь"])
    ]
    companies, contacts = [], []
    for i in range(20):
        cid = str(50_000_001 + i)
        inn = f"77{rng.randrange(10**7, 10**8)}"
        company = Company(
            cid,
            AMO,
            f"ООО Ромашка-{i}",
            inn,
            f"ИНН {inn}" if i % 3 else inn,
            f"c{i:04d}",
            base + timedelta(days=i),
            base + timedelta(days=i, hours=5),
        )
        companies.append(company)
        for _ in range(2 if i % 2 else 1):
            contact = Contact(
                str(60_000_001 + len(contacts)),
                AMO,
                f"Клиент{len(contacts)} Иван",
                f"+7999{rng.randrange(10**6, 10**7)}",
                f"c{len(contacts)}@client.ru",
                cid,
            )
            contacts.append(contact)
            company.contact_ids.append(contact.id)
    deals: list[Deal] = []
    now = base + timedelta(hours=amo_deals * 3 + 24 * 30)
    for i in range(amo_deals + future_deals):
        created = base + timedelta(hours=3 * i) if i < amo_deals else now + timedelta(days=1 + i - amo_deals)
        pipeline = pipelines[0] if i % 4 else pipelines[1]
        process = [s for s in pipeline.stages if s.kind == "process"]
        manager = managers[i % 5].key
        by = None if i % 7 == 0 else manager  # a deal from a web form is created by a robot
        at = created
        start = rng.randrange(0, min(2, len(process)))
        moves = [Move(at, pipeline.id, process[start].id, manager, by)]
        for stage in process[start + 1 : start + 1 + rng.randrange(0, 4)]:
            at += timedelta(hours=rng.randrange(1, 30))
            moves.append(Move(at, pipeline.id, stage.id, manager, manager if i % 5 else None))
        if i % 29 == 5:  # moved to the other pipeline
            target = pipelines[1] if pipeline is pipelines[0] else pipelines[0]
            pipeline = target
            at += timedelta(hours=2)
            moves.append(
                Move(at, target.id, [s for s in target.stages if s.kind == "process"][0].id, manager, manager)
            )
        outcome = ("open", "won", "lost", "lost")[rng.randrange(4)]
        reason_id, comments, closed = None, [], None
        if outcome != "open":
            at += timedelta(hours=rng.randrange(1, 48))
            moves.append(Move(at, pipeline.id, "142" if outcome == "won" else "143", manager, manager))
            closed = at
        if outcome == "lost":
            reason_id = reasons[i % len(reasons)].id if i % 5 else None
            if i % 3:
                comments.append(Comment(str(90_000_001 + i), at, manager, f"Клиент отказался, сделка {i}"))
        defects = {"duplicated_event"} if i in (3, 10, 17) and len(moves) > 1 else set()
        company = companies[i % len(companies)] if i % 6 else None
        deals.append(
            Deal(
                id=str(30_000_001 + i),
                source_name=AMO,
                number=str(30_000_001 + i),
                name=f"Сделка {i}",
                pipeline_id=pipeline.id,
                stage_id=moves[-1].stage_id,
                manager_key=manager,
                company_id=company.id if company else None,
                contact_ids=list(company.contact_ids) if company else [],
                amount=Decimal(rng.randrange(1000, 900_000)) + Decimal("0.50"),
                currency="RUB",
                created_at=created,
                updated_at=max(at, *(c.at for c in comments)) if comments else at,
                closed_at=closed,
                status=outcome,  # type: ignore[arg-type]
                loss_reason_id=reason_id,
                comments=comments,
                moves=moves,
                deleted_at=at + timedelta(days=1) if i % 23 == 11 else None,
                defects=defects,
            )
        )
    deals.append(  # another system's deal: never served by the amoCRM account
        Deal(
            "77",
            "b24_wholesale",
            "77",
            "Битрикс",
            "0",
            "NEW",
            "m90",
            None,
            [],
            Decimal(5),
            "RUB",
            base,
            base,
            None,
            "open",
            None,
            [],
            [Move(base, "0", "NEW", "m90")],
        )
    )
    return World(
        seed=seed,
        size=amo_deals,
        now=now,
        sources=[Source(AMO, "amocrm"), Source("b24_wholesale", "bitrix24")],
        managers=managers,
        companies=companies,
        contacts=contacts,
        pipelines=pipelines,
        loss_reasons=reasons,
        deals=deals,
        rates={},
    )


# -- truth computed from the World ------------------------------------------------------------
def unix(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def visible_deals(world: World) -> list[Deal]:
    return [d for d in world.deals if d.source_name == AMO and d.created_at <= world.now]


def is_deleted(world: World, deal: Deal) -> bool:
    return deal.deleted_at is not None and deal.deleted_at <= world.now


def live_deals(world: World) -> list[Deal]:
    return [d for d in visible_deals(world) if not is_deleted(world, d)]


def world_status_changes(world: World) -> tuple[list[int], list[int]]:
    """The moments of every status change up to now, and of the changes served twice (the
    last change of a deal with the duplicated-event defect)."""
    changes, twins = [], []
    for deal in visible_deals(world):
        mine = [
            unix(after.at)
            for before, after in zip(deal.moves, deal.moves[1:], strict=False)
            if after.at <= world.now
            and (before.pipeline_id, before.stage_id) != (after.pipeline_id, after.stage_id)
        ]
        changes += mine
        if mine and "duplicated_event" in deal.defects:
            twins.append(mine[0])
    return changes, twins


# -- clocks and a client ------------------------------------------------------------------------
class TickingClock:
    """Every reading is half a second later: two readings per request keep any client at one
    request per second, far below the limit."""

    def __init__(self, step: float = 0.5):
        self.t, self.step, self._lock = 0.0, step, threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.t += self.step
            return self.t


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Api:
    def __init__(self, standin: AmoCRMStandIn, token: str | None = None):
        self.standin = standin
        token = token or standin.credentials()[f"{AMO.upper()}_LONG_LIVED_TOKEN"]
        self.http = httpx.Client(
            base_url=standin.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def get(self, path: str, params: list[tuple[str, Any]] | None = None) -> httpx.Response:
        return self.http.get(path, params=params or [])

    def pages(self, path: str, params: list[tuple[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
        """Every page, following ``_links.next`` to the end."""
        response = self.get(path, params)
        while True:
            assert response.status_code in (200, 204), response.text
            if response.status_code == 204:
                return
            assert response.headers["content-type"].startswith("application/hal+json")
            page = response.json()
            yield page
            nxt = page["_links"].get("next")
            if not nxt:
                return
            response = self.http.get(nxt["href"])

    def all(self, path: str, key: str, params: list[tuple[str, Any]] | None = None) -> list[dict[str, Any]]:
        return [r for page in self.pages(path, params) for r in page["_embedded"][key]]


def start(world: World, **kwargs: Any) -> AmoCRMStandIn:
    kwargs.setdefault("clock", TickingClock())
    standin = AmoCRMStandIn(world, AMO, **kwargs)
    standin.start()
    return standin


@pytest.fixture(scope="module")
def world() -> World:
    return generate(7, 400)


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[AmoCRMStandIn]:
    standin = start(world)
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def api(served: AmoCRMStandIn) -> Api:
    return Api(served)


def test_the_world_has_what_the_tests_measure(world: World) -> None:
    live = live_deals(world)
    assert len(live) > 100
    assert any(is_deleted(world, d) for d in visible_deals(world))
    assert any(d.status == "lost" for d in live) and any(d.status == "won" for d in live)
    assert len(world_status_changes(world)[1]) >= 1


# -- leads --------------------------------------------------------------------------------------
def test_lead_pages_add_up_to_the_worlds_live_deals(api: Api, world: World) -> None:
    pages = list(api.pages("/api/v4/leads", [("limit", 50)]))
    ids = [lead["id"] for page in pages for lead in page["_embedded"]["leads"]]
    assert len(ids) == len(set(ids)) == len(live_deals(world))
    assert set(ids) == {int(d.id) for d in live_deals(world)}
    assert [p["_page"] for p in pages] == list(range(1, len(pages) + 1))
    assert all("next" in p["_links"] for p in pages[:-1]) and "next" not in pages[-1]["_links"]
    beyond = api.get("/api/v4/leads", [("limit", 50), ("page", len(pages) + 1)])
    assert beyond.status_code == 204 and beyond.content == b""


def test_leads_carry_the_worlds_values_in_the_documented_shape(api: Api, world: World) -> None:
    leads = {lead["id"]: lead for lead in api.all("/api/v4/leads", "leads", [("limit", 250)])}
    users = {m.key: int(m.user_ids[AMO]) for m in world.managers if AMO in m.user_ids}
    for deal in live_deals(world):
        lead = leads[int(deal.id)]
        assert set(lead) - {"_links"} == LEAD_SAMPLE_KEYS
        assert lead["price"] == int(deal.amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert (lead["pipeline_id"], lead["status_id"]) == (int(deal.pipeline_id), int(deal.stage_id))
        assert lead["responsible_user_id"] == users[deal.manager_key]
        assert lead["loss_reason_id"] == (int(deal.loss_reason_id) if deal.loss_reason_id else None)
        assert (lead["created_at"], lead["updated_at"]) == (unix(deal.created_at), unix(deal.updated_at))
        assert lead["closed_at"] == (unix(deal.closed_at) if deal.closed_at else None)
        assert lead["is_deleted"] is False and lead["custom_fields_values"] is None
        assert lead["_embedded"]["tags"] == []
        assert [c["id"] for c in lead["_embedded"]["companies"]] == (
            [int(deal.company_id)] if deal.company_id else []
        )


def test_lost_leads_served_equal_the_worlds_lost_deals(api: Api, world: World) -> None:
    lost = [lead for lead in api.all("/api/v4/leads", "leads", [("limit", 250)]) if lead["status_id"] == 143]
    expected = {int(d.id) for d in live_deals(world) if d.status == "lost"}
    assert expected and {lead["id"] for lead in lost} == expected


def test_with_loss_reason_and_contacts_embeds_arrays(api: Api, world: World) -> None:
    deal = next(d for d in live_deals(world) if d.loss_reason_id and d.contact_ids)
    plain = next(d for d in live_deals(world) if not d.loss_reason_id)
    leads = api.all(
        "/api/v4/leads",
        "leads",
        [("with", "loss_reason,contacts"), ("filter[id][]", deal.id), ("filter[id][]", plain.id)],
    )
    by_id = {lead["id"]: lead for lead in leads}
    reason = next(r for r in world.loss_reasons if r.id == deal.loss_reason_id)
    embedded = by_id[int(deal.id)]["_embedded"]
    assert [(r["id"], r["name"]) for r in embedded["loss_reason"]] == [(int(reason.id), reason.name)]
    assert {"sort", "created_at", "updated_at"} <= set(embedded["loss_reason"][0])
    assert embedded["contacts"] == [{"id": int(c), "is_main": i == 0} for i, c in enumerate(deal.contact_ids)]
    assert by_id[int(plain.id)]["_embedded"]["loss_reason"] == []
    without = api.get("/api/v4/leads", [("filter[id]", deal.id)]).json()["_embedded"]["leads"][0]
    assert set(without["_embedded"]) == {"tags", "companies"}


def test_limit_above_250_is_cut_to_250() -> None:
    world = hand_world(11, 600)
    standin = start(world)
    try:
        api = Api(standin)
        first = api.get("/api/v4/leads", [("limit", 1000)])
        assert first.status_code == 200
        page = first.json()
        assert len(page["_embedded"]["leads"]) == 250
        assert "limit=250" in page["_links"]["next"]["href"]
        assert sum(
            len(p["_embedded"]["leads"]) for p in api.pages("/api/v4/leads", [("limit", 1000)])
        ) == len(live_deals(world))
    finally:
        standin.stop()


def test_filter_by_updated_at_range(api: Api, world: World) -> None:
    stamps = sorted(unix(d.updated_at) for d in live_deals(world))
    lo, hi = stamps[len(stamps) // 4], stamps[len(stamps) // 2]
    got = api.all(
        "/api/v4/leads", "leads", [("filter[updated_at][from]", lo), ("filter[updated_at][to]", hi)]
    )
    expected = {int(d.id) for d in live_deals(world) if lo <= unix(d.updated_at) <= hi}
    assert expected and {lead["id"] for lead in got} == expected
    since = api.all("/api/v4/leads", "leads", [("filter[updated_at]", hi), ("limit", 250)])
    assert {lead["id"] for lead in since} == {
        int(d.id) for d in live_deals(world) if unix(d.updated_at) >= hi
    }
    header = {"If-Modified-Since": format_datetime(datetime.fromtimestamp(hi, UTC), usegmt=True)}
    modified = api.http.get("/api/v4/leads", params=[("limit", 250)], headers=header).json()["_embedded"][
        "leads"
    ]
    assert {lead["id"] for lead in modified} == {
        int(d.id) for d in live_deals(world) if unix(d.updated_at) > hi
    }


def test_filters_by_id_pipeline_closed_at_and_order(api: Api, world: World) -> None:
    live = live_deals(world)
    one = api.get("/api/v4/leads", [("filter[id]", live[5].id)]).json()["_embedded"]["leads"]
    assert [lead["id"] for lead in one] == [int(live[5].id)]
    several = api.all(
        "/api/v4/leads", "leads", [("filter[id][0]", live[1].id), ("filter[id][1]", live[2].id)]
    )
    assert {lead["id"] for lead in several} == {int(live[1].id), int(live[2].id)}
    wholesale = api.all("/api/v4/leads", "leads", [("filter[pipeline_id]", "7670335"), ("limit", 250)])
    assert {lead["id"] for lead in wholesale} == {int(d.id) for d in live if d.pipeline_id == "7670335"}
    closed = api.all("/api/v4/leads", "leads", [("filter[closed_at][from]", 1), ("limit", 250)])
    assert {lead["id"] for lead in closed} == {int(d.id) for d in live if d.closed_at}
    newest = api.get("/api/v4/leads", [("order[updated_at]", "desc"), ("limit", 5)]).json()["_embedded"][
        "leads"
    ]
    assert [lead["updated_at"] for lead in newest] == sorted(
        (unix(d.updated_at) for d in live), reverse=True
    )[:5]


def test_filtered_to_nothing_is_204_without_body(api: Api, world: World) -> None:
    future = unix(world.now) + 86400
    response = api.get("/api/v4/leads", [("filter[updated_at][from]", future)])
    assert response.status_code == 204 and response.content == b""


def test_deleted_leads_only_through_only_deleted(api: Api, world: World) -> None:
    deleted = {int(d.id) for d in visible_deals(world) if is_deleted(world, d)}
    got = api.all("/api/v4/leads", "leads", [("with", "only_deleted"), ("limit", 250)])
    assert deleted and {lead["id"] for lead in got} == deleted
    assert all(lead["is_deleted"] is True for lead in got)
    one = next(iter(deleted))
    assert api.get("/api/v4/leads", [("filter[id]", one)]).status_code == 204


def test_bad_parameters_answer_400_in_the_documented_shape(api: Api) -> None:
    response = api.get("/api/v4/leads", [("order[price]", "asc")])
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (
        body["title"] == "Bad Request"
        and body["status"] == 400
        and body["detail"] == "Request validation failed"
    )
    assert body["type"] == "https://httpstatus.es/400"
    assert body["validation-errors"][0]["errors"][0]["path"] == "order.price"
    assert api.get("/api/v4/leads", [("page", "x")]).status_code == 400


# -- pipelines, reasons, users, notes, contacts, companies --------------------------------------------
def test_pipelines_have_the_system_statuses(api: Api, world: World) -> None:
    body = api.get("/api/v4/leads/pipelines").json()
    pipelines = body["_embedded"]["pipelines"]
    assert {p["id"] for p in pipelines} == {int(p.id) for p in world.pipelines if p.source_name == AMO}
    for p in pipelines:
        statuses = p["_embedded"]["statuses"]
        ids = {s["id"] for s in statuses}
        world_stages = next(wp for wp in world.pipelines if int(wp.id) == p["id"]).stages
        assert {int(s.id) for s in world_stages} <= ids and {142, 143} <= ids
        assert [s["type"] for s in statuses].count(1) == 1
        assert all(s["pipeline_id"] == p["id"] for s in statuses)
    assert sum(p["is_main"] for p in pipelines) == 1


def test_loss_reasons(api: Api, world: World) -> None:
    reasons = api.get("/api/v4/leads/loss_reasons").json()["_embedded"]["loss_reasons"]
    expected = {(int(r.id), r.name) for r in world.loss_reasons if r.source_name == AMO}
    assert {(r["id"], r["name"]) for r in reasons} == expected


def test_users_pages_and_totals(api: Api, world: World) -> None:
    pages = list(api.pages("/api/v4/users", [("limit", 2)]))
    expected = {int(m.user_ids[AMO]): m for m in world.managers if AMO in m.user_ids}
    assert pages[0]["_total_items"] == len(expected)
    assert pages[0]["_page_count"] == math.ceil(len(expected) / 2) == len(pages)
    users = [u for p in pages for u in p["_embedded"]["users"]]
    assert {u["id"] for u in users} == set(expected)
    for u in users:
        manager = expected[u["id"]]
        assert u["name"] == manager.name and u["email"] == manager.emails_by_source.get(AMO, manager.email)
        assert u["rights"]["is_active"] == manager.active.get(AMO, True)
    assert any(not u["rights"]["is_active"] for u in users)


def test_common_notes_are_the_comments_on_live_deals(api: Api, world: World) -> None:
    notes = api.all("/api/v4/leads/notes", "notes", [("filter[note_type]", "common"), ("limit", 250)])
    expected = {(int(d.id), c.text) for d in live_deals(world) for c in d.comments if c.at <= world.now}
    assert expected and {(n["entity_id"], n["params"]["text"]) for n in notes} == expected
    assert all(n["note_type"] == "common" for n in notes)
    cut = sorted(n["updated_at"] for n in notes)[len(notes) // 2]
    later = api.all("/api/v4/leads/notes", "notes", [("filter[updated_at][from]", cut), ("limit", 250)])
    assert {n["id"] for n in later} == {n["id"] for n in notes if n["updated_at"] >= cut}


def test_companies_carry_inn_and_phones_in_custom_fields(api: Api, world: World) -> None:
    companies = {c["id"]: c for c in api.all("/api/v4/companies", "companies", [("with", "contacts")])}
    mine = [c for c in world.companies if c.source_name == AMO and c.created_at <= world.now]
    assert set(companies) == {int(c.id) for c in mine}
    phones = {c.id: c.phone for c in world.contacts if c.source_name == AMO}
    for company in mine:
        served = companies[int(company.id)]
        fields = {f["field_name"]: f for f in served["custom_fields_values"] or []}
        if company.inn_rendered:
            assert fields["ИНН"]["values"] == [{"value": company.inn_rendered}]
        else:
            assert "ИНН" not in fields
        expected_phones = [phones[c] for c in company.contact_ids if phones.get(c)]
        assert [v["value"] for v in fields.get("Телефон", {"values": []})["values"]] == expected_phones
        assert [c["id"] for c in served["_embedded"]["contacts"]] == [
            int(c) for c in company.contact_ids if c in phones
        ]
    assert any(c.inn_rendered for c in mine)
    cut = sorted(unix(c.updated_at) for c in mine)[len(mine) // 2]
    later = api.all("/api/v4/companies", "companies", [("filter[updated_at][from]", cut), ("limit", 3)])
    assert {c["id"] for c in later} == {int(c.id) for c in mine if unix(c.updated_at) >= cut}


def test_contacts(api: Api, world: World) -> None:
    """A contact exists in the account once its company or one of its deals does."""
    contacts = api.all("/api/v4/contacts", "contacts", [("limit", 7)])
    companies = {c.id for c in world.companies if c.source_name == AMO and c.created_at <= world.now}
    in_deals = {cid for d in visible_deals(world) for cid in d.contact_ids}
    mine = {c.id: c for c in world.contacts if c.source_name == AMO}
    expected = {cid for cid, c in mine.items() if cid in in_deals or c.company_id in companies}
    assert expected and {c["id"] for c in contacts} == {int(cid) for cid in expected}
    for c in contacts:
        contact = mine[str(c["id"])]
        fields = {f["field_code"]: f["values"][0]["value"] for f in c["custom_fields_values"] or []}
        assert fields == {k: v for k, v in (("PHONE", contact.phone), ("EMAIL", contact.email)) if v}
        assert c["name"] == contact.name


# -- events ---------------------------------------------------------------------------------------
def test_events_are_the_worlds_status_changes_plus_the_duplicate(api: Api, world: World) -> None:
    params = [("filter[type]", "lead_status_changed"), ("filter[entity]", "lead"), ("limit", 100)]
    events = api.all("/api/v4/events", "events", params)
    changes, twins = world_status_changes(world)
    assert changes and twins
    assert len(events) == len(changes) + len(twins)
    assert all(isinstance(e["id"], str) and len(e["id"]) == 26 for e in events)
    assert len({e["id"] for e in events}) == len(events)
    content = [
        json.dumps({k: v for k, v in e.items() if k not in ("id", "_links")}, sort_keys=True) for e in events
    ]
    assert len(content) - len(set(content)) == len(twins)  # the same change, served under a second id
    stamps = [e["created_at"] for e in events]
    assert stamps == sorted(stamps, reverse=True)  # the event log reads newest first


def test_an_event_records_before_and_after(api: Api, world: World) -> None:
    users = {m.key: int(m.user_ids[AMO]) for m in world.managers if AMO in m.user_ids}
    deals = [d for d in live_deals(world) if len(d.moves) >= 3 and not d.defects][:10]
    events = api.all(
        "/api/v4/events",
        "events",
        [("filter[entity]", "lead"), *(("filter[entity_id][]", d.id) for d in deals)],
    )
    got = sorted(
        (e["entity_id"], e["created_at"], e["created_by"], e["value_before"], e["value_after"])
        for e in events
    )
    expected = [
        (
            int(d.id),
            unix(a.at),
            users[a.by_user_key] if a.by_user_key else 0,
            [{"lead_status": {"id": int(b.stage_id), "pipeline_id": int(b.pipeline_id)}}],
            [{"lead_status": {"id": int(a.stage_id), "pipeline_id": int(a.pipeline_id)}}],
        )
        for d in deals
        for b, a in zip(d.moves, d.moves[1:], strict=False)
        if (b.pipeline_id, b.stage_id) != (a.pipeline_id, a.stage_id)
    ]
    assert len(deals) == 10 and got == sorted(expected)


def test_events_limits_and_filters(api: Api, world: World) -> None:
    page = api.get("/api/v4/events", [("limit", 500)]).json()
    assert len(page["_embedded"]["events"]) == 100 and "next" in page["_links"]
    eleven = [("filter[entity]", "lead")] + [("filter[entity_id][]", d.id) for d in live_deals(world)[:11]]
    response = api.get("/api/v4/events", eleven)
    assert response.status_code == 400
    assert response.json()["validation-errors"][0]["errors"][0]["path"] == "filter.entity_id"
    changes, twins = world_status_changes(world)
    stamps = sorted(changes)
    lo, hi = stamps[100], stamps[200]
    window = api.all(
        "/api/v4/events", "events", [("filter[created_at][from]", lo), ("filter[created_at][to]", hi)]
    )
    assert all(lo <= e["created_at"] <= hi for e in window)
    assert len(window) == sum(1 for s in changes + twins if lo <= s <= hi)
    assert api.get("/api/v4/events", [("filter[type]", "lead_added")]).status_code == 204


# -- the world moves on ---------------------------------------------------------------------------
def test_the_current_state_of_the_world_is_served() -> None:
    world = hand_world(5, 40, future_deals=3)
    standin = start(world)
    try:
        api = Api(standin)
        before = {lead["id"] for lead in api.all("/api/v4/leads", "leads")}
        assert before == {int(d.id) for d in live_deals(world)}
        with standin.lock:
            world.now += timedelta(days=10)
            deal = next(d for d in live_deals(world) if d.status == "open")
            moved_at = world.now - timedelta(hours=1)
            deal.moves.append(Move(moved_at, deal.pipeline_id, "143", deal.manager_key, deal.manager_key))
            deal.stage_id, deal.status, deal.updated_at, deal.closed_at = "143", "lost", moved_at, moved_at
        after = {lead["id"]: lead for lead in api.all("/api/v4/leads", "leads")}
        assert set(after) == {int(d.id) for d in live_deals(world)} and len(after) == len(before) + 3
        assert after[int(deal.id)]["status_id"] == 143
        events = api.all(
            "/api/v4/events", "events", [("filter[entity]", "lead"), ("filter[entity_id]", deal.id)]
        )
        assert unix(moved_at) in {e["created_at"] for e in events}
    finally:
        standin.stop()


# -- OAuth and the 401 -------------------------------------------------------------------------------
def _token(standin: AmoCRMStandIn, **fields: str) -> httpx.Response:
    creds = standin.credentials()
    body = {
        "client_id": creds["AMO_RETAIL_CLIENT_ID"],
        "client_secret": creds["AMO_RETAIL_CLIENT_SECRET"],
        "redirect_uri": standin.redirect_uri,
        **fields,
    }
    return httpx.post(f"{standin.url}/oauth2/access_token", json=body, timeout=10)


def test_credentials_are_deterministic_from_the_seed(world: World) -> None:
    a, b = AmoCRMStandIn(world, AMO), AmoCRMStandIn(world, AMO)
    assert a.credentials() == b.credentials()
    assert set(a.credentials()) == {
        "AMO_RETAIL_CLIENT_ID",
        "AMO_RETAIL_CLIENT_SECRET",
        "AMO_RETAIL_REFRESH_TOKEN",
        "AMO_RETAIL_LONG_LIVED_TOKEN",
    }
    other = AmoCRMStandIn(hand_world(8, 10), AMO)
    assert other.credentials()["AMO_RETAIL_CLIENT_SECRET"] != a.credentials()["AMO_RETAIL_CLIENT_SECRET"]
    with pytest.raises(ValueError, match="b24_wholesale"):
        AmoCRMStandIn(world, "b24_wholesale")


def test_unauthorized_answers_in_the_documented_shape(served: AmoCRMStandIn) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        response = httpx.get(f"{served.url}/api/v4/leads", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["title"] == "Unauthorized" and body["status"] == 401
        assert body["type"] == "https://httpstatus.es/401" and body["detail"]


def test_refresh_tokens_are_single_use(world: World) -> None:
    standin = start(world)
    try:
        refresh0 = standin.credentials()["AMO_RETAIL_REFRESH_TOKEN"]
        first = _token(standin, grant_type="refresh_token", refresh_token=refresh0)
        assert first.status_code == 200
        pair = first.json()
        assert pair["token_type"] == "Bearer" and pair["expires_in"] == 86400
        assert pair["refresh_token"] != refresh0
        assert Api(standin, pair["access_token"]).get("/api/v4/account").status_code == 200

        reused = _token(standin, grant_type="refresh_token", refresh_token=refresh0)
        assert reused.status_code == 401
        assert reused.headers["content-type"].startswith("application/problem+json")
        assert reused.json()["hint"] == "Token has been revoked" and reused.json()["status"] == 401

        second = _token(standin, grant_type="refresh_token", refresh_token=pair["refresh_token"]).json()
        assert Api(standin, pair["access_token"]).get("/api/v4/account").status_code == 401  # replaced
        assert Api(standin, second["access_token"]).get("/api/v4/account").status_code == 200
        bad_client = _token(
            standin, grant_type="refresh_token", refresh_token=second["refresh_token"], client_secret="x"
        )
        assert bad_client.status_code == 401

        restarted = start(world)  # the account outlives the stand-in's process: the current token still works
        try:
            again = _token(restarted, grant_type="refresh_token", refresh_token=second["refresh_token"])
            assert again.status_code == 200
            assert _token(restarted, grant_type="refresh_token", refresh_token=refresh0).status_code == 401
        finally:
            restarted.stop()
    finally:
        standin.stop()


def test_authorization_code_is_single_use(world: World) -> None:
    standin = start(world)
    try:
        code = standin.oauth.authorization_code
        wrong = _token(standin, grant_type="authorization_code", code=code, redirect_uri="https://elsewhere/")
        assert wrong.status_code == 400
        assert _token(standin, grant_type="authorization_code", code=code).status_code == 200
        again = _token(standin, grant_type="authorization_code", code=code)
        assert again.status_code == 400 and "revoked" in again.json()["hint"]
        refresh0 = standin.credentials()["AMO_RETAIL_REFRESH_TOKEN"]
        assert _token(standin, grant_type="refresh_token", refresh_token=refresh0).status_code == 401
    finally:
        standin.stop()


def test_an_expiring_access_token_forces_a_refresh(world: World) -> None:
    standin = start(world, faults=Faults(expire_token_after=3))
    try:
        pair = _token(
            standin,
            grant_type="refresh_token",
            refresh_token=standin.credentials()["AMO_RETAIL_REFRESH_TOKEN"],
        ).json()
        api = Api(standin, pair["access_token"])
        assert [api.get("/api/v4/account").status_code for _ in range(4)] == [200, 200, 200, 401]
        renewed = _token(standin, grant_type="refresh_token", refresh_token=pair["refresh_token"]).json()
        assert Api(standin, renewed["access_token"]).get("/api/v4/account").status_code == 200
        assert Api(standin).get("/api/v4/account").status_code == 200  # the long-lived token never expires
    finally:
        standin.stop()


# -- limits -------------------------------------------------------------------------------------------
def test_the_rate_limit_holds_at_seven_per_second_in_real_time(world: World) -> None:
    standin = start(world, clock=time.monotonic, block_after_refusals=10_000)
    try:
        api = Api(standin)
        statuses, bodies = [], []
        began = time.monotonic()
        while time.monotonic() - began < 1.5 and len(statuses) < 200:  # about 40 requests a second
            time.sleep(0.025)
            response = api.get("/api/v4/leads/pipelines")
            statuses.append(response.status_code)
            if response.status_code == 429:
                bodies.append(response.content)
        assert statuses.count(429) > 0
        with pytest.raises(ValueError):
            json.loads(bodies[0])
        assert standin.max_accepted_in_window(1.0) <= 7
        assert statuses.count(200) >= 8  # the window slid: more than one second's worth got through
    finally:
        standin.stop()


def test_the_rate_limit_admits_exactly_seven_in_every_second() -> None:
    clock = ManualClock()
    standin = start(hand_world(3, 20), clock=clock, block_after_refusals=10_000)
    try:
        api = Api(standin)
        statuses = []
        for i in range(60):  # a client firing 20 requests a second for three seconds
            clock.t = i / 20
            statuses.append(api.get("/api/v4/account").status_code)
        assert statuses.count(200) == 21 and statuses.count(429) == 39
        assert statuses[:8] == [200] * 7 + [429]
        assert standin.max_accepted_in_window(1.0) == 7
    finally:
        standin.stop()


def test_sustained_abuse_blocks_the_account_until_reset() -> None:
    clock = ManualClock()
    standin = start(hand_world(3, 20), clock=clock, block_after_refusals=5)
    try:
        api = Api(standin)
        statuses = [api.get("/api/v4/account").status_code for _ in range(13)]
        assert statuses == [200] * 7 + [429] * 6
        assert standin.blocked
        clock.t += 600  # minutes later the account is still blocked
        blocked = api.get("/api/v4/account")
        assert blocked.status_code == 403
        assert blocked.headers["content-type"].startswith("text/html") and b"nginx" in blocked.content
        standin.reset()
        assert api.get("/api/v4/account").status_code == 200
    finally:
        standin.stop()


def test_injected_faults_answer_in_amocrms_shapes(world: World) -> None:
    standin = start(world, faults=Faults(seed=1, burst_every=4, burst_length=2, error_rate=0.0))
    try:
        api = Api(standin)
        responses = [api.get("/api/v4/account") for _ in range(12)]
        throttled = [r for r in responses if r.status_code == 429]
        assert throttled and all(r.headers["content-type"].startswith("text/html") for r in throttled)
    finally:
        standin.stop()
    standin = start(world, faults=Faults(seed=1, error_rate=1.0))
    try:
        response = Api(standin).get("/api/v4/account")
        assert response.status_code == 502 and b"nginx" in response.content
    finally:
        standin.stop()
    standin = start(world, faults=Faults(seed=1, truncate_rate=1.0))
    try:
        response = Api(standin).get("/api/v4/leads/pipelines")
        assert response.status_code == 200
        with pytest.raises(ValueError):
            response.json()
    finally:
        standin.stop()
    standin = start(world, faults=Faults(seed=1, drop_rate=1.0))
    try:
        with pytest.raises(httpx.TransportError):
            Api(standin).get("/api/v4/account")
    finally:
        standin.stop()
