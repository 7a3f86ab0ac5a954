"""The RosBiznesSoft XML API stand-in over real HTTP: the documented form POST, session login,
list actions (fields, filters, orders, offset paging), several actions in one request, names
taken from the installation, and how it fails."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from sandbox.rosbiznessoft import API_PATH, EXAMPLE_RENAMED, RosBiznesSoftStandIn, credential_env_names
from sandbox.rosbiznessoft.fixtures import SOURCE, build_world
from sandbox.rosbiznessoft.server import NO_SESSION, WRONG_LOGIN
from sandbox.standin import Faults
from sandbox.world.model import Source, World


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=11, deals=90)


@pytest.fixture(scope="module")
def crm(world: World) -> Iterator[RosBiznesSoftStandIn]:
    standin = RosBiznesSoftStandIn(world, SOURCE, requests_per_second=10_000)
    standin.start()
    yield standin
    standin.stop()


def post(standin: RosBiznesSoftStandIn, body: str, sess_id: str | None = None) -> httpx.Response:
    headers = {"Cookie": f"sess_id={sess_id}"} if sess_id else {}
    return httpx.post(standin.url + API_PATH, data={"xml": body}, headers=headers)


def answer(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    text = response.text
    assert text.startswith('<?xml version="1.0" encoding="utf8" ?>')
    return ET.fromstring(text.split("?>", 1)[1])


def login(standin: RosBiznesSoftStandIn, password: str | None = None) -> str:
    body = (
        "<?xml version='1.0' encoding='utf8' ?><request><action type='auth' uid='80085'>"
        f"<login>{standin.user}</login><password>{password or standin.password}</password></action></request>"
    )
    action = answer(post(standin, body)).find("action")
    assert action is not None and action.get("uid") == "80085" and action.findtext("status") == "true"
    return action.findtext("sess_id") or ""


def list_xml(structure: str, inner: str = "", uid: str = "2") -> str:
    return f"<action type='list' uid='{uid}'><structure name='{structure}'>{inner}</structure></action>"


def rows(standin: RosBiznesSoftStandIn, sess: str, structure: str, inner: str = "") -> list[dict[str, str]]:
    action = answer(post(standin, f"<request>{list_xml(structure, inner)}</request>", sess)).find("action")
    assert action is not None and action.findtext("status") == "true", ET.tostring(action or ET.Element("x"))
    holder = action.find("structure")
    assert holder is not None and holder.get("name") == structure
    return [{c.tag: c.text or "" for c in item} for item in holder.findall("item")]


def error_of(standin: RosBiznesSoftStandIn, body: str, sess: str | None) -> str:
    action = answer(post(standin, body, sess)).find("action")
    assert action is not None and action.findtext("status") == "false"
    return action.findtext("error") or ""


# -- what is served ------------------------------------------------------------------------------
def test_every_structure_serves_the_world(crm: RosBiznesSoftStandIn, world: World) -> None:
    sess = login(crm)
    deals = {r["id"]: r for r in rows(crm, sess, "documents.deals")}
    assert set(deals) == {d.id for d in world.deals}
    deal = next(d for d in world.deals if d.status == "lost" and d.loss_reason_id and d.company_id)
    row = deals[deal.id]
    assert (
        row["status"] == deal.stage_id
        and row["type"] == deal.pipeline_id
        and row["reason"] == deal.loss_reason_id
    )
    assert row["sum"] == f"{deal.amount:.2f}" and row["owner"] == deal.company_id and row["visible"] == "1"
    assert row["date_close"] != "" and len(row["date"]) == 19  # Y-m-d H:i:s, Moscow time
    binned = next(d for d in world.deals if d.deleted_at is not None)
    assert deals[binned.id]["visible"] == "0"
    history = rows(crm, sess, "documents.deal_stage_history")
    assert len(history) == sum(len(d.moves) for d in world.deals)
    assert [h["status"] for h in history if h["owner"] == deal.id] == [m.stage_id for m in deal.moves]
    stages = rows(crm, sess, "references.deal_stages")
    assert {s["result"] for s in stages} == {"1", "2", "3"}
    details = rows(crm, sess, "references.companies_details")
    assert {d["inn"] for d in details} == {c.inn_rendered or "" for c in world.companies}
    comments = rows(crm, sess, "documents.deal_comments")
    assert len(comments) == sum(len(d.comments) for d in world.deals) > 0
    users = rows(crm, sess, "references.users")
    assert {u["active"] for u in users} == {"0", "1"}


def test_fields_filters_orders_and_paging(crm: RosBiznesSoftStandIn, world: World) -> None:
    sess = login(crm)
    since = "2025-03-01 00:00:00"
    query = (
        "<fields><id/><date_modify/></fields><filters><filter><field>date_modify</field><operation>&gt;=</operation>"
        f"<value>{since}</value></filter></filters><orders><order><field>id</field><type>desc</type></order></orders>"
    )
    every = rows(crm, sess, "documents.deals", query)
    assert every and all(set(r) == {"id", "date_modify"} and r["date_modify"] >= since for r in every)
    assert [int(r["id"]) for r in every] == sorted((int(r["id"]) for r in every), reverse=True)
    pages, first = [], 0
    while True:
        page = rows(
            crm, sess, "documents.deals", query + f"<limit><first>{first}</first><number>7</number></limit>"
        )
        pages.append(page)
        first += len(page)
        if len(page) < 7:
            break
    assert [r for p in pages for r in p] == every  # offset paging ends exactly, nothing twice
    assert len(pages) == len(every) // 7 + 1
    numeric = rows(crm, sess, "documents.deals", "<filters><filter><field>id</field><operation>&lt;</operation>"
                   "<value>10</value></filter></filters>")  # fmt: skip
    assert sorted(int(r["id"]) for r in numeric) == list(range(1, 10))  # numbers compare as numbers


def test_several_actions_in_one_request_are_answered_in_order(crm: RosBiznesSoftStandIn) -> None:
    sess = login(crm)
    body = (
        "<request>"
        + list_xml("references.users", uid="a")
        + list_xml("references.nope", uid="b")
        + "</request>"
    )
    actions = answer(post(crm, body, sess)).findall("action")
    assert [a.get("uid") for a in actions] == ["a", "b"]
    assert actions[0].findtext("status") == "true" and actions[1].findtext("status") == "false"
    assert actions[1].findtext("error") == "Структура references.nope не найдена"


def test_names_come_from_the_installation(world: World) -> None:
    standin = RosBiznesSoftStandIn(world, SOURCE, installation=EXAMPLE_RENAMED, requests_per_second=10_000)
    standin.start()
    try:
        sess = login(standin)
        deals = rows(standin, sess, "documents.sdelki")
        assert deals and {"etap", "summa", "data_izmeneniya"} <= set(deals[0])
        assert "status" not in deals[0]
        assert {s["itog"] for s in rows(standin, sess, "references.etapy_sdelok")} == {"10", "20", "30"}
        assert "не найдена" in error_of(standin, f"<request>{list_xml('documents.deals')}</request>", sess)
        settings = standin.connection_settings()
        assert settings["objects"]["deals"] == "documents.sdelki"
        assert settings["stage_results"] == {"10": "open", "20": "won", "30": "lost"}
    finally:
        standin.stop()


# -- sessions and auth ---------------------------------------------------------------------------
def test_login_and_sessions(crm: RosBiznesSoftStandIn) -> None:
    body = f"<request>{list_xml('references.users')}</request>"
    assert error_of(crm, body, None) == NO_SESSION
    assert error_of(crm, body, "made-up") == NO_SESSION
    wrong = "<request><action type='auth' uid='1'><login>api_user</login><password>x</password></action></request>"
    assert error_of(crm, wrong, None) == WRONG_LOGIN
    sess = login(crm)
    assert rows(crm, sess, "references.users")
    assert credential_env_names(SOURCE) == ("RBS_USER", "RBS_PASSWORD")
    assert crm.credentials() == {"RBS_USER": "api_user", "RBS_PASSWORD": crm.password}
    assert credential_env_names("rbs_south") == ("RBS_SOUTH_USER", "RBS_SOUTH_PASSWORD")


def test_a_session_expires_after_its_time_and_after_its_requests(world: World) -> None:
    now = [0.0]
    standin = RosBiznesSoftStandIn(world, SOURCE, faults=Faults(expire_token_after=3), clock=lambda: now[0],
                                   requests_per_second=10_000, session_ttl=600)  # fmt: skip
    standin.start()
    try:
        body = f"<request>{list_xml('references.users')}</request>"
        sess = login(standin)
        for _ in range(3):
            rows(standin, sess, "references.users")
        assert error_of(standin, body, sess) == NO_SESSION  # the fourth request
        sess = login(standin)
        now[0] += 599
        rows(standin, sess, "references.users")
        now[0] += 601
        assert error_of(standin, body, sess) == NO_SESSION  # unused for longer than its lifetime
    finally:
        standin.stop()


def test_read_only_user_and_unknown_actions(crm: RosBiznesSoftStandIn) -> None:
    sess = login(crm)
    add = "<request><action type='add' uid='1'><structure name='references.companies'><fields><name>X</name>" \
          "</fields></structure></action></request>"  # fmt: skip
    assert "Недостаточно прав" in error_of(crm, add, sess)
    assert "Неизвестный тип запроса: merge" in error_of(
        crm, "<request><action type='merge'/></request>", sess
    )


# -- requests it refuses -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("<fields><nope/></fields>", "Поле nope не найдено в структуре documents.deals"),
        ("<filters><filter><field>id</field><operation>~</operation><value>1</value></filter></filters>",
         "Неизвестная операция фильтра: ~"),
        ("<orders><order><field>id</field><type>up</type></order></orders>", "Неизвестный тип сортировки: up"),
        ("<limit><first>0</first><number>1001</number></limit>", "number не может быть больше 1000"),
        ("<limit><first>-1</first><number>10</number></limit>", "first не может быть отрицательным"),
    ],
)  # fmt: skip
def test_a_bad_list_action_is_refused_with_its_reason(
    crm: RosBiznesSoftStandIn, inner: str, expected: str
) -> None:
    sess = login(crm)
    assert expected in error_of(crm, f"<request>{list_xml('documents.deals', inner)}</request>", sess)


def test_what_is_not_an_api_request(crm: RosBiznesSoftStandIn) -> None:
    page = httpx.get(crm.url + API_PATH)
    assert page.status_code == 200 and "<form" in page.text  # the upload form of /api/xml/
    assert httpx.post(crm.url + API_PATH, data={"other": "1"}).headers["content-type"].startswith("text/html")
    assert httpx.post(crm.url + "/api/json/", data={"xml": "<request/>"}).status_code == 404
    broken = answer(post(crm, "<request><action"))
    assert broken.findtext("status") == "false" and "Ошибка разбора XML" in (broken.findtext("error") or "")


def test_its_own_rate_limit_and_the_faults(world: World) -> None:
    now = [0.0]
    standin = RosBiznesSoftStandIn(world, SOURCE, clock=lambda: now[0], requests_per_second=5)
    standin.start()
    try:
        statuses = [httpx.get(standin.url + API_PATH).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [503] * 2  # five a second, then nginx's 503
        now[0] += 1.0
        assert httpx.get(standin.url + API_PATH).status_code == 200
    finally:
        standin.stop()
    bursting = RosBiznesSoftStandIn(world, SOURCE, faults=Faults(burst_every=4, burst_length=2),
                                    requests_per_second=10_000)  # fmt: skip
    bursting.start()
    try:
        answers = [httpx.get(bursting.url + API_PATH) for _ in range(9)]
        refused = [a for a in answers if a.status_code == 503]
        assert len(refused) >= 2 and all("503 Service Temporarily Unavailable" in a.text for a in refused)
    finally:
        bursting.stop()


def test_only_a_rosbiznessoft_source_is_served(world: World) -> None:
    other = World(world.seed, 0, world.now, [Source("amo", "amocrm")], [], [], [], [], [], [], {})
    with pytest.raises(ValueError, match="not a RosBiznesSoft CRM"):
        RosBiznesSoftStandIn(other, "amo")
