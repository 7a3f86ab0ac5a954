"""The Megaplan API v3 stand-in over real HTTP: the JSON-in-query parameters, the envelope, paging
that ends exactly, fields, tokens, limits and error shapes, and what it serves of the world."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sandbox.megaplan import MegaplanStandIn
from sandbox.megaplan.fixtures import SOURCE, build_world
from sandbox.megaplan.render import Renderer, loss_reason_field_name
from sandbox.standin import Faults
from sandbox.world.model import World

LIST_DEFAULT = {"contentType", "id", "name", "number", "program", "state", "result", "manager", "contractor",
                "price", "timeCreated"}  # fmt: skip


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=11, deals=120)


@pytest.fixture(scope="module")
def account(world: World) -> Iterator[MegaplanStandIn]:
    standin = MegaplanStandIn(world, SOURCE, requests_per_second=None)
    standin.start()
    yield standin
    standin.stop()


HTTP = httpx.Client(timeout=10)  # one client: a new one per request costs more than the request


def query(params: dict[str, Any] | None) -> str:
    return "?" + quote(json.dumps(params, ensure_ascii=False), safe="") if params else ""


def call(
    standin: MegaplanStandIn, path: str, params: dict[str, Any] | None = None, token: str | None = "app"
) -> httpx.Response:
    headers = {}
    if token == "app":
        token = standin.account.app_token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return HTTP.get(f"{standin.url}/api/v3/{path}{query(params)}", headers=headers)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["status"] == 200 and body["meta"]["errors"] == []
    return body["data"]


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and body["meta"]["status"] == status
    return " ".join(e["message"] for e in body["meta"]["errors"])


def live_ids(world: World) -> list[str]:
    return sorted((d.id for d in world.deals_of(SOURCE) if d.deleted_at is None), key=int)


# -- parameters and envelope ---------------------------------------------------------------
def test_parameters_are_one_json_object_after_the_question_mark(account: MegaplanStandIn) -> None:
    body = call(account, "deal", {"limit": 5}).json()
    assert body["meta"]["pagination"] == {"count": len(live_ids(account.world)), "limit": 5}
    assert len(body["data"]) == 5
    raw = HTTP.get(
        f'{account.url}/api/v3/deal?{{"limit":2}}',
        headers={"Authorization": f"Bearer {account.account.app_token}"},
    )
    assert len(ok(raw)) == 2  # braces unescaped by a lenient client read the same
    token = account.account.app_token
    assert "JSON" in refused(
        HTTP.get(f"{account.url}/api/v3/deal?limit=5", headers={"Authorization": f"Bearer {token}"}), 422
    )
    assert "JSON" in refused(
        HTTP.get(f"{account.url}/api/v3/deal?%7Blimit", headers={"Authorization": f"Bearer {token}"}), 422
    )


def test_paging_after_the_last_item_ends_exactly(account: MegaplanStandIn) -> None:
    expected = live_ids(account.world)

    def walk(limit: int, start: str | None) -> tuple[list[str], list[int]]:
        got: list[str] = []
        sizes: list[int] = []
        anchor = {"contentType": "Deal", "id": start} if start else None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if anchor:
                params["pageAfter"] = anchor
            data = ok(call(account, "deal", params))
            sizes.append(len(data))
            got += [d["id"] for d in data]
            if len(data) < limit:
                return got, sizes
            anchor = {"contentType": "Deal", "id": int(data[-1]["id"])}  # numeric ids are accepted too

    got, sizes = walk(7, None)
    assert got == expected and sizes == [7] * (len(expected) // 7) + [len(expected) % 7]
    # exactly two pages left after the anchor: two full pages, then an empty one
    got, sizes = walk(20, expected[-41])
    assert got == expected[-40:] and sizes == [20, 20, 0]


def test_page_before_with_and_limits(account: MegaplanStandIn) -> None:
    ids = live_ids(account.world)
    anchor = {"contentType": "Deal", "id": ids[10]}
    assert [d["id"] for d in ok(call(account, "deal", {"limit": 3, "pageBefore": anchor}))] == ids[7:10]
    assert [d["id"] for d in ok(call(account, "deal", {"limit": 4, "pageWith": anchor}))] == ids[8:12]
    capped = call(account, "deal", {"limit": 500}).json()
    assert capped["meta"]["pagination"]["limit"] == 100 and len(capped["data"]) == 100
    assert "limit" in refused(call(account, "deal", {"limit": 0}), 422)
    assert "pageAfter" in refused(call(account, "deal", {"pageAfter": anchor, "pageBefore": anchor}), 422)
    assert "pageAfter" in refused(call(account, "deal", {"pageAfter": 5}), 422)


def test_a_deleted_anchor_still_places_the_page_in_id_order(account: MegaplanStandIn, world: World) -> None:
    deleted = sorted((d.id for d in world.deals_of(SOURCE) if d.deleted_at is not None), key=int)
    assert deleted, "the world should hold deleted deals"
    gone = {"contentType": "Deal", "id": deleted[0]}
    after = [d["id"] for d in ok(call(account, "deal", {"limit": 3, "pageAfter": gone}))]
    assert after == [i for i in live_ids(world) if int(i) > int(deleted[0])][:3]
    sorted_by_name = {
        "limit": 3,
        "pageAfter": gone,
        "sortBy": [{"contentType": "SortField", "fieldName": "name"}],
    }
    assert "не найдена" in refused(call(account, "deal", sorted_by_name), 422)


def test_sorting(account: MegaplanStandIn) -> None:
    newest = {
        "sortBy": [{"contentType": "SortField", "fieldName": "timeCreated", "desc": True}],
        "limit": 100,
    }
    created = [d["timeCreated"]["value"] for d in ok(call(account, "deal", newest))]
    assert created == sorted(created, key=datetime.fromisoformat, reverse=True)
    unsortable = {"sortBy": [{"contentType": "SortField", "fieldName": "timeUpdated"}]}
    assert "timeUpdated" in refused(call(account, "deal", unsortable), 422)


# -- fields ----------------------------------------------------------------------------------
def test_collections_serve_a_reduced_field_set_and_bare_links(account: MegaplanStandIn, world: World) -> None:
    deal = ok(call(account, "deal", {"limit": 1}))[0]
    assert set(deal) == LIST_DEFAULT
    assert deal["state"] == {"contentType": "ProgramState", "id": deal["state"]["id"]}  # no name in a list
    extra = ok(call(account, "deal", {"limit": 1, "fields": ["timeUpdated", "commentsCount"]}))[0]
    assert set(extra) == LIST_DEFAULT | {"timeUpdated", "commentsCount"}
    only = ok(call(account, "deal", {"limit": 1, "fields": ["timeUpdated"], "onlyRequestedFields": True}))[0]
    assert set(only) == {"contentType", "id", "timeUpdated"}
    card = ok(call(account, f"deal/{deal['id']}"))
    assert card["state"]["name"] and card["program"]["name"]
    assert {"timeUpdated", "stateTimeUpdated", "commentsCount", "lastComment"} <= set(card)
    message = refused(call(account, "deal", {"fields": ["responsible", "updatedAt"]}), 422)
    assert "responsible" in message and "updatedAt" in message


def test_custom_loss_reason_field(account: MegaplanStandIn, world: World) -> None:
    definitions = ok(call(account, "deal/extraFields"))
    projects = next(p for p in world.pipelines if p.name == "Проекты")
    name = loss_reason_field_name(projects)
    assert name == "Category1000012CustomFieldPrichinaOtkaza"
    field = next(f for f in definitions if f["name"] == name)
    assert field["hint"] == "Причина отказа" and field["type"] == "EnumField"
    assert field["enumValues"] == [r.name for r in world.loss_reasons if r.source_name == SOURCE]
    reasons = {r.id: r.name for r in world.loss_reasons}
    served = {
        d["id"]: d[name]
        for d in ok(call(account, "deal", {"limit": 100, "fields": [name]}))
        if d["program"]["id"] == projects.id
    }
    expected = {
        d.id: reasons[d.loss_reason_id] if d.status == "lost" and d.loss_reason_id else None
        for d in world.deals_of(SOURCE)
        if d.id in served
    }
    assert served == expected
    assert any(v for v in served.values()), "some project deals should carry a reason"


# -- what is served of the world -------------------------------------------------------------
def test_deals_states_and_results_follow_the_world(account: MegaplanStandIn, world: World) -> None:
    served = {}
    anchor = None
    while True:
        data = ok(call(account, "deal", {"limit": 100, **({"pageAfter": anchor} if anchor else {})}))
        served.update({d["id"]: d for d in data})
        if len(data) < 100:
            break
        anchor = {"contentType": "Deal", "id": data[-1]["id"]}
    deals = {d.id: d for d in world.deals_of(SOURCE) if d.deleted_at is None}
    assert set(served) == set(deals)
    for deal_id, record in served.items():
        deal = deals[deal_id]
        assert record["state"]["id"] == deal.stage_id
        assert record["result"] == {"open": "active", "won": "positive", "lost": "negative"}[deal.status]
        assert record["price"]["value"] == float(deal.amount) and record["price"]["currency"] == deal.currency
    types = {}
    for program in ok(call(account, "program", {"fields": ["states"]})):
        states = ok(call(account, f"program/{program['id']}/states"))
        assert [s["id"] for s in states] == [s["id"] for s in program["states"]]
        assert states[0]["isEntry"] and not any(s["isEntry"] for s in states[1:])
        types.update({s["id"]: s["type"] for s in states})
    kinds = {s.id: s.kind for p in world.pipelines for s in p.stages}
    assert {k: {"process": "active", "conditional_refusal": "active", "won": "positive", "lost": "negative"}[v]
            for k, v in kinds.items()} == types  # fmt: skip
    deleted = next(d for d in world.deals_of(SOURCE) if d.deleted_at is not None)
    assert "не найдена" in refused(call(account, f"deal/{deleted.id}"), 404)
    assert "не найдена" in refused(call(account, f"deal/{deleted.id}/statusHistory"), 404)


def test_status_history_and_comment_feed(account: MegaplanStandIn, world: World) -> None:
    renderer = Renderer(world, SOURCE)
    deals = [d for d in world.deals_of(SOURCE) if d.deleted_at is None and len(renderer.changes(d)) >= 2]
    deal = max(deals, key=lambda d: (len(d.comments), len(d.moves)))
    history = ok(call(account, f"deal/{deal.id}/statusHistory"))
    moves = sorted(deal.moves, key=lambda m: m.at)
    stage_path = [m.stage_id for i, m in enumerate(moves) if i == 0 or m.stage_id != moves[i - 1].stage_id]
    times = [datetime.fromisoformat(r["toStatusUpdated"]["value"]) for r in history]
    assert times == sorted(times, reverse=True)  # newest first: order is the reader's business
    rows = list(reversed(history))
    assert [r["fromStatus"]["id"] for r in rows] + [rows[-1]["toStatus"]["id"]] == stage_path
    assert all(r["fromStatus"]["id"] != r["toStatus"]["id"] for r in rows)
    two = ok(call(account, f"deal/{deal.id}/statusHistory", {"limit": 1, "pageAfter": history[0]}))
    assert two == history[1:2]

    feed = ok(call(account, f"deal/{deal.id}/comments"))
    comments = [i for i in feed if i["contentType"] == "Comment"]
    assert len(comments) == len(deal.comments) and deal.comments
    assert {i["contentType"] for i in feed} == {"Comment", "FieldChange"}
    assert all(
        c["content"].startswith("<p>") and c["subject"] == {"contentType": "Deal", "id": deal.id}
        for c in comments
    )
    tricky = [
        d for d in world.deals_of(SOURCE) if any("<" in c.text for c in d.comments) and d.deleted_at is None
    ]
    if tricky:
        escaped = [
            c["content"]
            for c in ok(call(account, f"deal/{tricky[0].id}/comments"))
            if "&lt;" in c.get("content", "")
        ]
        assert escaped and "&amp;" in escaped[0]


def test_employees_and_contractors(account: MegaplanStandIn, world: World) -> None:
    employees = ok(call(account, "employee", {"fields": ["isWorking", "contactInfo"]}))
    by_id = {e["id"]: e for e in employees}
    for manager in world.managers:
        employee = by_id[manager.user_ids[SOURCE]]
        assert employee["isWorking"] == manager.active[SOURCE]
        assert employee["contactInfo"][0]["value"] == manager.emails_by_source[SOURCE]
        assert f"{employee['lastName']} {employee['firstName']}" in manager.name
    companies = ok(call(account, "contractorCompany", {"fields": ["payers"]}))
    served = {c["id"]: c for c in companies}
    for company in world.companies:
        payers = served[company.id]["payers"]
        if company.inn_rendered:
            assert [p["inn"] for p in payers] == [company.inn_rendered]
            assert ok(call(account, f"payer/{payers[0]['id']}"))["inn"] == company.inn_rendered
        else:
            assert payers == []
    assert any(not c.inn_rendered for c in world.companies) and any(c.inn_rendered for c in world.companies)


# -- auth --------------------------------------------------------------------------------------
def test_tokens_and_their_errors(world: World) -> None:
    now = [1_700_000_000.0]
    standin = MegaplanStandIn(world, SOURCE, requests_per_second=None, wall_clock=lambda: now[0],
                              faults=Faults(expire_token_after=3))  # fmt: skip
    standin.start()
    try:
        url = f"{standin.url}/api/v3/auth/access_token"
        creds = standin.credentials()
        user, password = creds["MEGAPLAN_USER"], creds["MEGAPLAN_PASSWORD"]
        assert "токен" in refused(call(standin, "deal", {"limit": 1}, token=None), 401)
        assert "токен" in refused(call(standin, "deal", {"limit": 1}, token="nonsense"), 401)

        grant = HTTP.post(url, data={"username": user, "password": password, "grant_type": "password"})
        pair = grant.json()
        assert grant.status_code == 200 and "meta" not in pair
        assert pair["expires_in"] == 172800 and pair["token_type"] == "bearer" and pair["refresh_token"]
        multipart = HTTP.post(url, files={"username": (None, user), "password": (None, password),
                                           "grant_type": (None, "password")})  # fmt: skip
        assert multipart.status_code == 200
        for _ in range(3):
            ok(call(standin, "deal", {"limit": 1}, token=pair["access_token"]))
        assert "истёк" in refused(call(standin, "deal", {"limit": 1}, token=pair["access_token"]), 401)
        ok(
            call(standin, "deal", {"limit": 1, "access_token": multipart.json()["access_token"]})
        )  # in the query

        renewed = HTTP.post(url, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
        assert renewed.status_code == 200 and renewed.json()["refresh_token"] != pair["refresh_token"]
        again = HTTP.post(url, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # rotated: used once

        fresh = renewed.json()["access_token"]
        now[0] += 172_800
        assert "истёк" in refused(call(standin, "deal", {"limit": 1}, token=fresh), 401)  # 48 hours
        for _ in range(5):  # the application token never expires, faults or not
            ok(call(standin, "deal", {"limit": 1}))

        wrong = HTTP.post(url, data={"username": user, "password": "wrong", "grant_type": "password"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
        odd = HTTP.post(url, data={"grant_type": "client_credentials"})
        assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"
        assert HTTP.get(url).status_code == 405
    finally:
        standin.stop()


# -- limits, faults and paths ---------------------------------------------------------------------
def test_account_rate_limit_and_faults(world: World) -> None:
    tick = [0.0]
    standin = MegaplanStandIn(
        world, SOURCE, clock=lambda: tick[0], faults=Faults(seed=2, burst_every=25, burst_length=2)
    )
    standin.start()
    try:
        statuses = [call(standin, "program").status_code for _ in range(12)]  # all within one second
        assert statuses == [200] * 10 + [429] * 2
        limited = call(standin, "program")
        assert limited.headers["Retry-After"] == "1" and "Слишком много" in refused(limited, 429)
        tick[0] += 1.0
        assert call(standin, "program").status_code == 200
        bursts = []
        for _n in range(40):
            tick[0] += 0.2
            bursts.append(call(standin, "program").status_code)
        assert 429 in bursts and standin.refused == 3  # the bursts are the fault's, not the window's
    finally:
        standin.stop()
    broken = MegaplanStandIn(world, SOURCE, requests_per_second=None, faults=Faults(seed=3, error_rate=1.0))
    broken.start()
    try:
        assert "Внутренняя" in refused(call(broken, "program"), 500)
    finally:
        broken.stop()


def test_paths_outside_the_api_and_unknown_resources(account: MegaplanStandIn) -> None:
    page = HTTP.get(f"{account.url}/deals/5001/card/")
    assert page.status_code == 404 and "nginx" in page.text
    assert "не найден" in refused(call(account, "offerings"), 404)
    post = HTTP.post(
        f"{account.url}/api/v3/deal", headers={"Authorization": f"Bearer {account.account.app_token}"}
    )
    assert post.status_code == 405
