"""The Bitrix24 stand-in over real HTTP: webhook auth, list paging, batch, filters, the
leaky bucket and the operating-time limit, faults -- checked against the World it serves."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from sandbox.bitrix24 import Bitrix24StandIn
from sandbox.standin import Faults
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

SOURCE = "b24_wholesale"
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$")


# -- a small Bitrix24 world, built by hand ---------------------------------------------------
def _pipelines() -> list[Pipeline]:
    general = Pipeline(
        "0",
        SOURCE,
        "Общая",
        [
            Stage("NEW", "Новая заявка", "process", 10, "new"),
            Stage("PREPARATION", "Первичный контакт", "process", 20, "contact"),
            Stage("PREPAYMENT_INVOICE", "КП и счёт", "process", 30, "proposal"),
            Stage("EXECUTING", "Согласование договора", "process", 40, "contract"),
            Stage("WON", "Сделка успешна", "won", 60, None),
            Stage("LOSE", "Сделка провалена", "lost", 70, None),
            Stage("APOLOGY", "Анализ причины провала", "lost", 80, None),
        ],
        sort=100,
        is_main=True,
    )
    tenders = Pipeline(
        "1",
        SOURCE,
        "Тендеры",
        [
            Stage("C1:NEW", "Новый тендер", "process", 10, "new"),
            Stage("C1:PREPARATION", "Подготовка заявки", "process", 20, "contact"),
            Stage("C1:PREPAYMENT_INVOICE", "Заявка подана", "process", 40, "proposal"),
            Stage("C1:EXECUTING", "Исполнение контракта", "process", 50, "contract"),
            Stage("C1:WON", "Тендер выигран", "won", 60, None),
            Stage("C1:LOSE", "Тендер проигран", "lost", 70, None),
            Stage("C1:LOSE_PRICE", "Проиграли: цена", "lost", 80, None, reason_name="Проиграли: цена"),
            Stage(
                "C1:LOSE_BUDGET",
                "Проиграли: нет бюджета",
                "lost",
                90,
                None,
                reason_name="Проиграли: нет бюджета",
            ),
        ],
        sort=200,
    )
    return [general, tenders]


def build_world(deal_count: int, seed: int = 11) -> World:
    """A Bitrix24-only world: two funnels, five users (one dismissed), companies with INNs
    written in several ways, deals that move, win, lose (with and without a reason and a
    comment), change funnel, and are deleted."""
    rng = random.Random(seed)
    now = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
    managers = [
        Manager(
            key=f"m{i:02d}",
            name=name,
            email=f"user{i}@example.ru",
            strengths={},
            user_ids={SOURCE: uid},
            emails_by_source={SOURCE: f"User{i}@Example.ru"},
            active={SOURCE: i != 5},
        )
        for i, (uid, name) in enumerate(
            [
                ("1", "Иванов Иван"),
                ("3", "Петрова Анна"),
                ("5", "Сидоров Пётр"),
                ("7", "Кузнецова Ольга"),
                ("9", "Смирнов Олег"),
            ],
            start=1,
        )
    ]
    reasons = [
        LossReason(rid, SOURCE, name, code, now - timedelta(days=400))
        for rid, name, code in [
            ("79", "Нет бюджета", "no_budget"),
            ("80", "Есть другой поставщик", "other_supplier"),
            ("81", "Высокая цена", "high_price"),
            ("82", "Передумали", None),
        ]
    ]
    companies = []
    for i in range(1, 41):
        inn = f"77{rng.randrange(10**7, 10**8)}"
        style = i % 5
        rendered = [inn, f"{inn[:2]} {inn[2:4]} {inn[4:]}", f"ИНН {inn}", "", None][style]
        created = now - timedelta(days=500 - i)
        companies.append(
            Company(
                str(i),
                SOURCE,
                f"ООО Компания {i}",
                inn if style < 3 else None,
                rendered,
                f"c{i:04d}",
                created,
                created + timedelta(days=i),
            )
        )
    contacts = [
        Contact(
            str(i),
            SOURCE,
            f"Фамилия{i} Имя{i}",
            f"+7 900 000-{i:02d}-{i:02d}",
            f"c{i}@example.ru" if i % 4 else "",
            str(i % 40 + 1) if i % 3 else None,
        )
        for i in range(1, 61)
    ]
    pipelines = _pipelines()
    by_id = {p.id: p for p in pipelines}
    deals = []
    for n in range(1, deal_count + 1):
        manager = managers[rng.randrange(len(managers))].key
        pipeline = by_id["1" if rng.random() < 0.3 else "0"]
        process = [s for s in pipeline.stages if s.kind == "process"]
        created = now - timedelta(days=rng.uniform(20, 300))
        at = created
        moves = [Move(at, pipeline.id, process[0].id, manager, manager if rng.random() < 0.8 else None)]
        for stage in process[1 : 1 + rng.randrange(len(process))]:
            at += timedelta(hours=rng.uniform(1, 60))
            moves.append(Move(at, pipeline.id, stage.id, manager, manager))
        if pipeline.id == "0" and rng.random() < 0.08:  # handed over to the tenders funnel
            pipeline = by_id["1"]
            at += timedelta(hours=3)
            moves.append(Move(at, "1", "C1:PREPARATION", manager, manager))
        outcome = rng.choices(["open", "won", "lost"], [0.3, 0.3, 0.4])[0]
        reason_id, comments, closed = None, [], None
        stage_id = moves[-1].stage_id
        if outcome != "open":
            at += timedelta(hours=rng.uniform(1, 48))
            closed = at
            if outcome == "won":
                stage_id = "WON" if pipeline.id == "0" else "C1:WON"
            elif pipeline.id == "0":
                stage_id = rng.choice(["LOSE", "LOSE", "APOLOGY"])
                reason_id = rng.choice(["79", "80", "81", "82", None])
            else:
                stage_id = rng.choice(["C1:LOSE_PRICE", "C1:LOSE_BUDGET", "C1:LOSE"])
                reason_id = rng.choice(["79", None]) if stage_id == "C1:LOSE" else None
            moves.append(Move(at, pipeline.id, stage_id, manager, manager))
            if outcome == "lost" and rng.random() < 0.8:
                comments.append(
                    Comment(
                        str(5000 + n), at + timedelta(minutes=5), manager, f"Клиент отказался, сделка {n}"
                    )
                )
        deleted = now - timedelta(days=1) if rng.random() < 0.03 else None
        deals.append(
            Deal(
                id=str(n),
                source_name=SOURCE,
                number=str(n),
                name=f"Поставка №{n}",
                pipeline_id=pipeline.id,
                stage_id=stage_id,
                manager_key=manager,
                company_id=str(rng.randrange(1, 41)) if rng.random() < 0.9 else None,
                contact_ids=[str(rng.randrange(1, 61))] if rng.random() < 0.7 else [],
                amount=Decimal(rng.randrange(1_000_00, 5_000_000_00)) / 100,
                currency=rng.choice(["RUB", "RUB", "USD"]),
                created_at=created,
                updated_at=max(m.at for m in moves) + timedelta(minutes=10),
                closed_at=closed,
                status=outcome,  # type: ignore[arg-type]
                loss_reason_id=reason_id,
                comments=comments,
                moves=moves,
                deleted_at=deleted,
            )
        )
    return World(
        seed=seed,
        size=deal_count,
        now=now,
        sources=[Source(SOURCE, "bitrix24")],
        managers=managers,
        companies=companies,
        contacts=contacts,
        pipelines=pipelines,
        loss_reasons=reasons,
        deals=deals,
        rates={},
    )


def realistic_world() -> World:
    """The generator's world when it is there, else the hand-built one."""
    try:
        from sandbox.world.generate import generate
    except ImportError:
        return build_world(300)
    return generate(7, 300)


def visible(world: World) -> list[Deal]:
    return [d for d in world.deals_of(SOURCE) if d.deleted_at is None or d.deleted_at > world.now]


def seconds(moment: datetime) -> datetime:
    """An instant as the portal stores it: whole seconds, with a zone."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=0)


class FakeClock:
    def __init__(self, start: float = 1_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world() -> World:
    return realistic_world()


@contextmanager
def _serve(standin: Bitrix24StandIn) -> Iterator[tuple[Bitrix24StandIn, httpx.Client]]:
    standin.start()
    try:
        hook = standin.credentials()[f"{SOURCE.upper()}_WEBHOOK"]
        with httpx.Client(base_url=hook, timeout=10) as client:
            yield standin, client
    finally:
        standin.stop()


@pytest.fixture
def portal(world: World) -> Iterator[tuple[Bitrix24StandIn, httpx.Client]]:
    with _serve(Bitrix24StandIn(world, SOURCE)) as served:
        yield served


def call(client: httpx.Client, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(f"{method}.json", json=params or {})
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(
    client: httpx.Client, method: str, params: dict[str, Any], items: bool = False
) -> list[dict[str, Any]]:
    """Page with ``start``/``next`` until an answer without ``next``."""
    rows: list[dict[str, Any]] = []
    start = 0
    while True:
        body = call(client, method, {**params, "start": start})
        chunk = body["result"]["items"] if items else body["result"]
        rows.extend(chunk)
        assert body["total"] >= len(rows)
        if "next" not in body:
            assert len(rows) == body["total"]
            return rows
        assert len(chunk) == 50
        start = body["next"]


# -- auth and envelope ------------------------------------------------------------------------
def test_credentials_name_a_webhook_and_a_wrong_code_is_refused(
    portal: tuple[Bitrix24StandIn, httpx.Client],
) -> None:
    standin, client = portal
    creds = standin.credentials()
    assert list(creds) == ["B24_WHOLESALE_WEBHOOK"]
    assert re.fullmatch(rf"{re.escape(standin.url)}/rest/1/[0-9a-z]{{16}}/", creds["B24_WHOLESALE_WEBHOOK"])
    assert Bitrix24StandIn(standin.world, SOURCE).code == standin.code  # fixed by the seed

    wrong = httpx.post(f"{standin.url}/rest/1/{'x' * 16}/crm.deal.list.json", json={})
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "INVALID_CREDENTIALS",
        "error_description": "Invalid request credentials",
    }
    other_user = httpx.post(f"{standin.url}/rest/2/{standin.code}/crm.deal.list", json={})
    assert other_user.status_code == 401 and other_user.json()["error"] == "INVALID_CREDENTIALS"
    no_hook = httpx.post(f"{standin.url}/rest/crm.deal.list", json={})
    assert no_hook.status_code == 401 and no_hook.json()["error"] == "NO_AUTH_FOUND"
    unknown = client.post("crm.deal.nosuch", json={})
    assert unknown.status_code == 404 and unknown.json()["error"] == "ERROR_METHOD_NOT_FOUND"

    body = call(client, "crm.category.list", {"entityTypeId": 2})
    time_block = body["time"]
    for key in (
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
        "operating_reset_at",
        "operating",
    ):
        assert key in time_block
    assert INSTANT.match(time_block["date_start"]) and isinstance(time_block["operating_reset_at"], int)


# -- deals ------------------------------------------------------------------------------------
def test_start_paging_returns_every_deal_once_and_ends(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    rows = all_pages(client, "crm.deal.list", {"order": {"ID": "ASC"}, "select": ["ID", "DATE_MODIFY"]})
    ids = [r["ID"] for r in rows]
    expected = sorted((d.id for d in visible(world)), key=int)
    assert len(expected) > 50  # several pages
    assert ids == expected
    deleted = {d.id for d in world.deals_of(SOURCE)} - set(expected)
    assert not deleted & set(ids)


def test_fast_paging_by_id_with_start_minus_one_returns_every_deal_once(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    last, seen = 0, []
    while True:
        body = call(
            client,
            "crm.deal.list",
            {"order": {"ID": "ASC"}, "filter": {">ID": last}, "select": ["ID"], "start": -1},
        )
        assert body["total"] == 0 and "next" not in body
        seen.extend(r["ID"] for r in body["result"])
        if len(body["result"]) < 50:
            break
        last = int(body["result"][-1]["ID"])
    assert seen == sorted((d.id for d in visible(world)), key=int)


def test_deal_records_are_strings_in_the_portal_shape(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    rows = all_pages(client, "crm.deal.list", {})
    fields = call(client, "crm.deal.fields")["result"]
    reason_items = {i["ID"]: i["VALUE"] for i in fields["UF_CRM_LOSS_REASON"]["items"]}
    assert fields["UF_CRM_LOSS_REASON"]["type"] == "enumeration" and reason_items
    assert reason_items == {r.id: r.name for r in world.loss_reasons if r.source_name == SOURCE}
    by_id = {d.id: d for d in visible(world)}
    for row in rows:
        for key in (
            "ID",
            "TITLE",
            "STAGE_ID",
            "CATEGORY_ID",
            "OPPORTUNITY",
            "CURRENCY_ID",
            "ASSIGNED_BY_ID",
            "DATE_CREATE",
            "DATE_MODIFY",
            "CLOSED",
            "STAGE_SEMANTIC_ID",
            "COMPANY_ID",
        ):
            assert isinstance(row[key], str), (key, row[key])
        assert all(v is None or isinstance(v, str) for v in row.values()), row
        for key in ("DATE_CREATE", "DATE_MODIFY", "MOVED_TIME", "BEGINDATE", "CLOSEDATE"):
            assert INSTANT.match(row[key]), (key, row[key])
        assert re.fullmatch(r"\d+\.\d{2}", row["OPPORTUNITY"])
        deal = by_id[row["ID"]]
        assert Decimal(row["OPPORTUNITY"]) == deal.amount.quantize(Decimal("0.01"))
        assert row["CLOSED"] == ("N" if deal.status == "open" else "Y")
        assert row["UF_CRM_LOSS_REASON"] is None or row["UF_CRM_LOSS_REASON"] in reason_items
        assert set(row) >= {
            "COMMENTS",
            "SOURCE_ID",
            "LAST_ACTIVITY_TIME",
            "MOVED_BY_ID",
            "BEGINDATE",
            "CLOSEDATE",
            "CREATED_BY_ID",
            "MODIFY_BY_ID",
        }
    assert any(r["UF_CRM_LOSS_REASON"] for r in rows)
    assert any(r["COMMENTS"] for r in rows) and any(
        r["STAGE_SEMANTIC_ID"] == "F" and not r["COMMENTS"] for r in rows
    )
    assert any(r["COMPANY_ID"] == "0" for r in rows) == any(not d.company_id for d in by_id.values())


def test_select_masks_follow_the_portal(portal: tuple[Bitrix24StandIn, httpx.Client]) -> None:
    _, client = portal
    star = call(client, "crm.deal.list", {"select": ["*"]})["result"][0]
    assert "UF_CRM_LOSS_REASON" not in star and "STAGE_ID" in star
    custom = call(client, "crm.deal.list", {"select": ["UF_*"]})["result"][0]
    assert set(custom) == {"ID", "UF_CRM_LOSS_REASON"}
    default = call(client, "crm.deal.list", {})["result"][0]
    assert set(default) == set(star) | {"UF_CRM_LOSS_REASON"}


def test_filters_agree_with_the_world(world: World, portal: tuple[Bitrix24StandIn, httpx.Client]) -> None:
    _, client = portal
    deals = visible(world)
    lost = call(client, "crm.deal.list", {"filter": {"STAGE_SEMANTIC_ID": "F"}, "select": ["ID"]})
    assert lost["total"] == sum(d.status == "lost" for d in deals) > 0
    won = call(client, "crm.deal.list", {"filter": {"STAGE_SEMANTIC_ID": "S", "CLOSED": "Y"}})
    assert won["total"] == sum(d.status == "won" for d in deals) > 0
    tenders = call(client, "crm.deal.list", {"filter": {"CATEGORY_ID": 1}})
    assert tenders["total"] == sum(d.pipeline_id == "1" for d in deals) > 0
    some_stage = deals[0].stage_id
    at_stage = call(client, "crm.deal.list", {"filter": {"STAGE_ID": some_stage}})["total"]
    not_at_stage = call(client, "crm.deal.list", {"filter": {"!STAGE_ID": some_stage}})["total"]
    assert at_stage == sum(d.stage_id == some_stage for d in deals) and at_stage + not_at_stage == len(deals)
    # an incremental load: everything modified since a moment, in the portal's zone or any other
    since = seconds(sorted(d.updated_at for d in deals)[len(deals) // 2])
    expected = sum(seconds(d.updated_at) >= since for d in deals)
    moscow = since.astimezone(ZoneInfo("Europe/Moscow"))
    for value in (since.isoformat(), moscow.isoformat(), moscow.replace(tzinfo=None).isoformat(sep=" ")):
        assert call(client, "crm.deal.list", {"filter": {">=DATE_MODIFY": value}})["total"] == expected
    picked = [d.id for d in deals[:7]]
    listed = call(client, "crm.deal.list", {"filter": {"@ID": picked}, "select": ["ID"]})["result"]
    assert sorted(r["ID"] for r in listed) == sorted(picked)
    newest_first = call(
        client, "crm.deal.list", {"order": {"DATE_CREATE": "DESC"}, "select": ["ID", "DATE_CREATE"]}
    )["result"]
    assert newest_first[0]["ID"] == max(deals, key=lambda d: d.created_at).id


def test_query_string_and_form_parameters_work_like_json(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    as_json = call(
        client,
        "crm.deal.list",
        {"filter": {">ID": 20, "CATEGORY_ID": "0"}, "select": ["ID", "TITLE"], "order": {"ID": "DESC"}},
    )
    query = (
        "filter%5B%3EID%5D=20&filter%5BCATEGORY_ID%5D=0&select%5B%5D=ID&select%5B%5D=TITLE&order%5BID%5D=DESC"
    )
    as_get = client.get(f"crm.deal.list?{query}").json()
    as_form = client.post(
        "crm.deal.list", content=query, headers={"Content-Type": "application/x-www-form-urlencoded"}
    ).json()
    assert as_json["result"] == as_get["result"] == as_form["result"]
    assert as_json["total"] == as_get["total"] == as_form["total"] > 0


# -- batch ------------------------------------------------------------------------------------
def test_batch_of_fifty_list_commands_reads_2500_deals_in_one_request() -> None:
    big = build_world(2_600, seed=5)
    with _serve(Bitrix24StandIn(big, SOURCE)) as (standin, client):
        cmd = {f"p{i}": f"crm.deal.list?order%5BID%5D=ASC&select%5B%5D=ID&start={i * 50}" for i in range(50)}
        before = len(standin.log)
        response = client.post("batch", json={"halt": 0, "cmd": cmd})
        assert len(standin.log) == before + 1 and len(standin.accepted_at) == 1
        body = response.json()["result"]
        ids = [row["ID"] for key in cmd for row in body["result"][key]]
        expected = sorted((d.id for d in visible(big)), key=int)
        assert len(ids) == 2_500 and ids == expected[:2_500]
        assert body["result_error"] == []
        assert set(body["result_total"].values()) == {len(expected)}
        assert body["result_next"]["p0"] == 50 and body["result_next"]["p49"] == 2_500
        assert set(body["result_time"]) == set(cmd) and "operating" in body["result_time"]["p0"]

        too_long = client.post(
            "batch", json={"halt": 0, "cmd": {f"k{i}": "crm.status.list" for i in range(51)}}
        )
        assert too_long.status_code == 400
        assert too_long.json()["error"] == "ERROR_BATCH_LENGTH_EXCEEDED"


def test_batch_reports_errors_per_command_and_empty_parts_as_lists(
    portal: tuple[Bitrix24StandIn, httpx.Client],
) -> None:
    _, client = portal
    body = call(
        client,
        "batch",
        {
            "halt": 0,
            "cmd": {
                "stages": "crm.status.list?filter%5BENTITY_ID%5D=DEAL_STAGE_1",
                "nested": "batch?cmd%5Ba%5D=user.get",
                "missing": "crm.nothing.list",
                "comments": "crm.timeline.comment.list?filter%5BENTITY_TYPE%5D=deal",
            },
        },
    )["result"]
    assert {s["STATUS_ID"] for s in body["result"]["stages"]} >= {"C1:NEW", "C1:WON", "C1:LOSE"}
    assert body["result_error"]["nested"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert body["result_error"]["missing"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert "ENTITY_ID" in body["result_error"]["comments"]["error_description"]
    assert body["result_next"] == []
    empty = call(client, "batch", {"halt": 0, "cmd": {}})["result"]
    assert empty == {
        "result": [],
        "result_error": [],
        "result_total": [],
        "result_next": [],
        "result_time": [],
    }


def test_batch_commands_chain_pages_through_result_references(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    expected = sorted((d.id for d in visible(world)), key=int)
    full = len(expected) // 50
    assert 1 <= full <= 3 and len(expected) % 50  # full pages, then a short one

    def page(after: str) -> str:
        return "crm.deal.list?order%5BID%5D=ASC&select%5B%5D=ID&start=-1&filter%5B%3EID%5D=" + quote(after)

    cmd = {"p0": page("0"), **{f"p{i}": page(f"$result[p{i - 1}][49][ID]") for i in range(1, 5)}}
    body = call(client, "batch", {"halt": 0, "cmd": cmd})["result"]
    pages = [[row["ID"] for row in body["result"][f"p{i}"]] for i in range(5)]
    assert [len(p) for p in pages[:full]] == [50] * full and 0 < len(pages[full]) < 50
    assert [i for p in pages for i in p] == expected  # consecutive pages, no overlap, no gap
    assert pages[full + 1 :] == [[]] * (4 - full)  # past a short page the reference resolves to nothing

    history = {
        "h0": "crm.stagehistory.list?entityTypeId=2&order%5BID%5D=ASC&start=-1&filter%5B%3EID%5D=0",
        "h1": "crm.stagehistory.list?entityTypeId=2&order%5BID%5D=ASC&start=-1&filter%5B%3EID%5D="
        + quote("$result[h0][items][49][ID]"),
        "c": "crm.deal.list?select%5B%5D=ID&start=0",
        "t": "crm.deal.list?select%5B%5D=ID&start=0&filter%5B%3EID%5D=" + quote("$total[c]"),
        "n": "crm.deal.list?select%5B%5D=ID&start=0&filter%5B%3EID%5D=" + quote("$total[nosuch]"),
    }
    body = call(client, "batch", {"halt": 0, "cmd": history})["result"]
    first, second = body["result"]["h0"]["items"], body["result"]["h1"]["items"]
    assert len(first) == 50 and second and second[0]["ID"] > first[-1]["ID"]
    assert [r["ID"] for r in first + second] == sorted(r["ID"] for r in first + second)
    assert body["result_total"]["c"] == len(expected)
    above_count = sum(int(i) > len(expected) for i in expected)
    assert body["result_total"]["t"] == above_count and body["result_total"]["n"] == 0


# -- stage history and reference data ---------------------------------------------------------
def test_stage_history_has_one_row_per_move_with_integer_values(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    query = {"entityTypeId": 2, "order": {"ID": "ASC"}}
    rows = all_pages(client, "crm.stagehistory.list", query, items=True)
    deals = visible(world)
    assert len(rows) == sum(len(d.moves) for d in deals) > 100
    for row in rows:
        assert set(row) == {
            "ID",
            "TYPE_ID",
            "OWNER_ID",
            "CREATED_TIME",
            "CATEGORY_ID",
            "STAGE_SEMANTIC_ID",
            "STAGE_ID",
        }
        assert all(isinstance(row[k], int) for k in ("ID", "TYPE_ID", "OWNER_ID", "CATEGORY_ID"))
        assert INSTANT.match(row["CREATED_TIME"])
    ids = [r["ID"] for r in rows]
    assert ids == sorted(set(ids))
    assert {r["TYPE_ID"] for r in rows} >= {1, 2, 3} and {r["TYPE_ID"] for r in rows} <= {1, 2, 3, 5}
    assert sum(r["TYPE_ID"] == 1 for r in rows) == len(deals)
    # fast paging agrees
    last, fast = 0, []
    while True:
        body = call(client, "crm.stagehistory.list", {**query, "filter": {">ID": last}, "start": -1})
        fast.extend(body["result"]["items"])
        assert body["total"] == 0 and "next" not in body
        if len(body["result"]["items"]) < 50:
            break
        last = body["result"]["items"][-1]["ID"]
    assert fast == rows
    # one deal's moves, in order
    deal = max(deals, key=lambda d: len(d.moves))
    own = call(client, "crm.stagehistory.list", {**query, "filter": {"OWNER_ID": int(deal.id)}})["result"][
        "items"
    ]
    assert [r["STAGE_ID"] for r in own] == [m.stage_id for m in sorted(deal.moves, key=lambda m: m.at)]
    since = call(
        client, "crm.stagehistory.list", {**query, "filter": {">=CREATED_TIME": own[-1]["CREATED_TIME"]}}
    )
    last_move = seconds(max(m.at for m in deal.moves))
    assert since["total"] == sum(seconds(m.at) >= last_move for d in deals for m in d.moves) > 0
    refused = client.post("crm.stagehistory.list", json={**query, "filter": {"NOPE": 1}})
    assert refused.status_code == 400 and refused.json()["error"] == "INVALID_ARG_VALUE"


def test_funnels_stages_and_users(world: World, portal: tuple[Bitrix24StandIn, httpx.Client]) -> None:
    _, client = portal
    categories = call(client, "crm.category.list", {"entityTypeId": 2})
    names = {c["id"]: c for c in categories["result"]["categories"]}
    assert categories["total"] == 2 and names[0]["isDefault"] == "Y" and names[1]["isDefault"] == "N"
    assert names[0]["name"] == "Общая" and names[1]["name"] == "Тендеры"
    general = call(client, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})["result"]
    by_status = {s["STATUS_ID"]: s for s in general}
    assert by_status["NEW"]["SEMANTICS"] is None and by_status["NEW"]["EXTRA"]["SEMANTICS"] == "process"
    assert by_status["WON"]["SEMANTICS"] == "S" and by_status["LOSE"]["SEMANTICS"] == "F"
    assert (
        by_status["APOLOGY"]["SEMANTICS"] == "F" and by_status["APOLOGY"]["EXTRA"]["SEMANTICS"] == "apology"
    )
    assert all(s["ENTITY_ID"] == "DEAL_STAGE" and s["CATEGORY_ID"] is None for s in general)
    tenders = call(client, "crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE_1"}})["result"]
    assert all(s["STATUS_ID"].startswith("C1:") and s["CATEGORY_ID"] == "1" for s in tenders)
    assert [s["SORT"] for s in tenders] == sorted((s["SORT"] for s in tenders), key=int)
    assert {s["STATUS_ID"] for s in tenders} == {
        s.id for p in world.pipelines if p.source_name == SOURCE and p.id == "1" for s in p.stages
    }

    users = all_pages(client, "user.get", {})
    expected = {m.user_ids[SOURCE]: m for m in world.managers if SOURCE in m.user_ids}
    assert {u["ID"] for u in users} == set(expected)
    for u in users:
        manager = expected[u["ID"]]
        assert u["ACTIVE"] is manager.active.get(SOURCE, True)
        assert u["EMAIL"] == manager.emails_by_source.get(SOURCE, manager.email) and u["UF_DEPARTMENT"] == [1]
    active_only = call(client, "user.get", {"filter": {"ACTIVE": True}})["result"]
    assert len(active_only) == sum(m.active.get(SOURCE, True) for m in expected.values())


def test_every_loss_comment_is_in_the_deal_or_its_timeline(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    refused = client.post("crm.timeline.comment.list", json={"filter": {"ENTITY_ID": 1}})
    assert refused.status_code == 400 and "ENTITY_TYPE" in refused.json()["error_description"]
    lost = [d for d in visible(world) if d.status == "lost" and d.comments]
    rows = {
        r["ID"]: r
        for r in call(
            client,
            "crm.deal.list",
            {"filter": {"@ID": [d.id for d in lost[:50]]}, "select": ["ID", "COMMENTS"]},
        )["result"]
    }
    in_timeline = 0
    for deal in lost[:50]:
        comment = max(enumerate(deal.comments), key=lambda ic: (ic[1].at, ic[0]))[1]  # the latest
        if rows[deal.id]["COMMENTS"] is not None:
            assert rows[deal.id]["COMMENTS"] == comment.text
            continue
        found = call(
            client, "crm.timeline.comment.list", {"filter": {"ENTITY_ID": deal.id, "ENTITY_TYPE": "deal"}}
        )
        texts = [c["COMMENT"] for c in found["result"]]
        assert comment.text in texts and found["result"][0]["ENTITY_TYPE"] == "deal"
        assert all(isinstance(c["ID"], str) and INSTANT.match(c["CREATED"]) for c in found["result"])
        in_timeline += 1
    assert 0 < in_timeline < len(lost[:50])


def test_customers_contacts_and_requisites(
    world: World, portal: tuple[Bitrix24StandIn, httpx.Client]
) -> None:
    _, client = portal
    companies = [c for c in world.companies if c.source_name == SOURCE and c.created_at <= world.now]
    listed = all_pages(client, "crm.company.list", {"select": ["ID", "TITLE", "DATE_MODIFY"]})
    assert {c["ID"] for c in listed} == {c.id for c in companies}
    since = seconds(sorted(c.updated_at for c in companies)[len(companies) // 2])
    recent = call(client, "crm.company.list", {"filter": {">=DATE_MODIFY": since.isoformat()}})
    assert recent["total"] == sum(seconds(c.updated_at) >= since for c in companies) > 0

    requisites = all_pages(client, "crm.requisite.list", {"filter": {"ENTITY_TYPE_ID": 4}})
    by_company: dict[str, list[dict[str, Any]]] = {}
    for rq in requisites:
        assert rq["ENTITY_TYPE_ID"] == "4"
        by_company.setdefault(rq["ENTITY_ID"], []).append(rq)
    with_inn = {c.id: c for c in companies if c.inn_rendered is not None}
    assert set(by_company) == set(with_inn)
    for cid, rqs in by_company.items():
        assert {rq["RQ_INN"] for rq in rqs} == {with_inn[cid].inn_rendered}
    assert any(len(rqs) == 2 for rqs in by_company.values())
    assert call(client, "crm.requisite.list", {"filter": {"ENTITY_TYPE_ID": 3}})["total"] == 0

    contacts = [c for c in world.contacts if c.source_name == SOURCE]
    plain = call(client, "crm.contact.list", {"select": ["*"]})["result"][0]
    assert "PHONE" not in plain and "EMAIL" not in plain
    with_multi = all_pages(
        client, "crm.contact.list", {"select": ["ID", "NAME", "LAST_NAME", "PHONE", "EMAIL"]}
    )
    assert {c["ID"] for c in with_multi} <= {c.id for c in contacts} and len(with_multi) > 0
    by_contact = {c.id: c for c in contacts}
    for row in with_multi:
        contact = by_contact[row["ID"]]
        assert [p["VALUE"] for p in row["PHONE"]] == ([contact.phone] if contact.phone else [])
        assert all(p["TYPE_ID"] == "PHONE" and p["VALUE_TYPE"] == "WORK" for p in row["PHONE"])
        assert [e["VALUE"] for e in row["EMAIL"]] == ([contact.email] if contact.email else [])


def test_the_portal_serves_the_world_as_it_is_now(portal: tuple[Bitrix24StandIn, httpx.Client]) -> None:
    standin, client = portal
    world = build_world(120, seed=3)
    standin.world = world
    before = call(client, "crm.deal.list", {"select": ["ID"], "start": -1, "order": {"ID": "DESC"}})[
        "result"
    ][0]["ID"]
    with standin.lock:
        template = next(d for d in world.deals if d.status == "open" and d.deleted_at is None)
        world.now += timedelta(hours=1)
        moved = Move(world.now, template.pipeline_id, template.moves[-1].stage_id, template.manager_key)
        world.deals.append(
            Deal(
                **{
                    **template.__dict__,
                    "id": str(int(before) + 1),
                    "created_at": world.now,
                    "updated_at": world.now,
                    "moves": [moved],
                    "comments": [],
                }
            )
        )
    fresh = call(
        client, "crm.deal.list", {"filter": {">=DATE_MODIFY": world.now.isoformat()}, "select": ["ID"]}
    )
    assert [r["ID"] for r in fresh["result"]] == [str(int(before) + 1)]


# -- limits -----------------------------------------------------------------------------------
def test_leaky_bucket_lets_a_burst_of_fifty_then_answers_503(world: World) -> None:
    clock = FakeClock()
    with _serve(Bitrix24StandIn(world, SOURCE, clock=clock)) as (standin, client):
        statuses = [client.post("crm.category.list", json={"entityTypeId": 2}).status_code for _ in range(50)]
        assert statuses == [200] * 50
        refused = client.post("crm.category.list", json={"entityTypeId": 2})
        assert refused.status_code == 503
        assert refused.json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
        clock.advance(0.5)  # drains one
        assert client.post("crm.category.list", json={"entityTypeId": 2}).status_code == 200
        assert client.post("crm.category.list", json={"entityTypeId": 2}).status_code == 503
        # a batch is one request, however many commands it carries
        clock.advance(0.5)
        batch = client.post(
            "batch", json={"halt": 0, "cmd": {f"c{i}": "crm.category.list?entityTypeId=2" for i in range(50)}}
        )
        assert batch.status_code == 200 and len(batch.json()["result"]["result"]) == 50
        assert client.post("crm.category.list", json={"entityTypeId": 2}).status_code == 503
        assert len(standin.accepted_at) == 52


def test_accepted_requests_never_exceed_fifty_plus_two_per_second(world: World) -> None:
    clock = FakeClock()
    rng = random.Random(1)
    with _serve(Bitrix24StandIn(world, SOURCE, clock=clock)) as (standin, client):
        for _ in range(400):
            client.post("crm.category.list", json={"entityTypeId": 2})
            clock.advance(rng.choice([0.0, 0.0, 0.05, 0.1, 0.3, 1.0]))
        accepted = sorted(standin.accepted_at)
        refused = len(standin.log) - len(accepted)
        span = accepted[-1] - accepted[0]
        assert refused > 0 and len(accepted) >= 50 + 2 * span - 3  # the bucket was really full
        for i, start in enumerate(accepted):
            for j in range(i, len(accepted)):
                assert j - i + 1 <= 50 + 2 * (accepted[j] - start) + 1e-9


def test_operating_time_limit_blocks_one_method_until_the_window_passes(world: World) -> None:
    clock = FakeClock()
    standin = Bitrix24StandIn(world, SOURCE, clock=clock, operating_budget=1.0)
    with _serve(standin) as (standin, client):
        operating, answers = [], []
        for _ in range(30):
            clock.advance(2.0)  # slow enough for the leaky bucket
            response = client.post("crm.deal.list", json={"select": ["ID"]})
            answers.append(response.status_code)
            if response.status_code != 200:
                break
            operating.append(response.json()["time"]["operating"])
        assert answers[-1] == 429 and set(answers[:-1]) == {200} and len(answers) > 2
        assert response.json() == {
            "error": "OPERATION_TIME_LIMIT",
            "error_description": "Method is blocked due to operation time limit.",
        }
        assert operating == sorted(operating) and operating[-1] >= 1.0 - 0.2
        assert client.post("crm.status.list", json={}).status_code == 200  # other methods still work
        blocked = call(
            client,
            "batch",
            {"halt": 0, "cmd": {"d": "crm.deal.list", "s": "crm.category.list?entityTypeId=2"}},
        )["result"]
        assert blocked["result_error"]["d"]["error"] == "OPERATION_TIME_LIMIT" and "s" in blocked["result"]
        clock.advance(601)
        assert client.post("crm.deal.list", json={"select": ["ID"]}).status_code == 200


# -- faults -----------------------------------------------------------------------------------
def test_faults_answer_as_the_portal_does(world: World) -> None:
    faults = Faults(seed=3, burst_every=10, burst_length=2)
    with _serve(Bitrix24StandIn(world, SOURCE, faults=faults)) as (_standin, client):
        answers = [client.post("crm.status.list", json={}) for _ in range(30)]
        limited = [a for a in answers if a.status_code == 503]
        assert limited and all(a.json()["error"] == "QUERY_LIMIT_EXCEEDED" for a in limited)

    with _serve(Bitrix24StandIn(world, SOURCE, faults=Faults(seed=1, error_rate=1.0))) as (_standin, client):
        first, second = client.post("crm.status.list", json={}), client.post("crm.status.list", json={})
        assert {first.status_code, second.status_code} == {500, 502}
        assert "text/html" in (first if first.status_code == 502 else second).headers["content-type"]

    with _serve(Bitrix24StandIn(world, SOURCE, faults=Faults(seed=1, truncate_rate=1.0))) as (
        _standin,
        client,
    ):
        cut = client.post("crm.deal.list", json={})
        assert cut.status_code == 200
        with pytest.raises(ValueError):  # not JSON; cut inside a character, not even UTF-8
            json.loads(cut.content)

    with _serve(Bitrix24StandIn(world, SOURCE, html_batch_rate=1.0)) as (_standin, client):
        small = client.post("batch", json={"halt": 0, "cmd": {"a": "crm.status.list"}})
        assert small.status_code == 200 and small.json()["result"]["result"]["a"]
        big = client.post("batch", json={"halt": 0, "cmd": {f"k{i}": "crm.status.list" for i in range(40)}})
        assert big.status_code == 200 and big.headers["content-type"].startswith("text/html")

    dropping = Bitrix24StandIn(world, SOURCE, faults=Faults(seed=1, drop_rate=1.0))
    with _serve(dropping) as (_standin, client), pytest.raises(httpx.TransportError):
        client.post("crm.status.list", json={})
