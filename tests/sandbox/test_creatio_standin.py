"""The Creatio OData 4 stand-in over real HTTP: what it serves, how it filters and pages, how
it logs in and how it fails."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from sandbox.creatio import LOGIN_PATH, CreatioStandIn, credential_env_names
from sandbox.creatio.fixtures import SOURCE, build_world
from sandbox.creatio.render import parse_when
from sandbox.creatio.schema import EMPTY_GUID
from sandbox.standin import Faults
from sandbox.world.model import Comment, Move, Source, World


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=11, deals=80)


@pytest.fixture(scope="module")
def site(world: World) -> Iterator[CreatioStandIn]:
    standin = CreatioStandIn(world, SOURCE, max_rows=500)
    standin.start()
    yield standin
    standin.stop()


class Session:
    """A logged-in client of the stand-in (cookies and the BPMCSRF header)."""

    def __init__(self, standin: CreatioStandIn):
        self.standin = standin
        self.http = httpx.Client(base_url=standin.url)
        login = self.http.post(
            LOGIN_PATH, json={"UserName": standin.username, "UserPassword": standin.password}
        )
        assert login.status_code == 200 and login.json()["Code"] == 0
        self.cookies = dict(c.split(";", 1)[0].split("=", 1) for c in login.headers.get_list("set-cookie"))
        self.http.cookies.clear()

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "BPMCSRF": self.cookies["BPMCSRF"],
        }

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(self.standin.odata_root + path, params=params, headers=self.headers)

    def rows(self, set_name: str, **params: str) -> list[dict[str, Any]]:
        response = self.get(f"/{set_name}", **params)
        assert response.status_code == 200, response.text
        return response.json()["value"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def api(site: CreatioStandIn) -> Session:
    return Session(site)


def error_text(response: httpx.Response) -> str:
    """Every message of Creatio's nested error body, joined."""
    node: Any = response.json()["error"]
    messages = []
    while isinstance(node, dict):
        messages.append(node.get("message", ""))
        node = node.get("innererror") or node.get("internalexception")
    return " | ".join(messages)


# -- auth ----------------------------------------------------------------------------------------
def test_cookie_login_sets_the_session_cookies_and_requires_bpmcsrf(site: CreatioStandIn) -> None:
    session = Session(site)
    assert set(session.cookies) == {"BPMLOADER", ".ASPXAUTH", "BPMCSRF", "UserName"}
    assert session.cookies["UserName"] == site.username
    cookie_only = {"Cookie": session.headers["Cookie"]}
    url = site.odata_root + "/OpportunityStage"
    assert session.http.get(url, headers=cookie_only).status_code == 403  # no BPMCSRF header
    assert session.http.get(url, headers={**cookie_only, "BPMCSRF": "forged"}).status_code == 403
    assert session.get("/OpportunityStage").status_code == 200
    assert httpx.get(site.url + url).status_code == 401  # no session at all

    refused = httpx.post(site.url + LOGIN_PATH, json={"UserName": site.username, "UserPassword": "nope"})
    assert (
        refused.status_code == 200 and refused.json()["Code"] == 1 and "Invalid" in refused.json()["Message"]
    )
    assert not refused.headers.get_list("set-cookie")
    assert httpx.get(site.url + LOGIN_PATH).status_code == 405
    assert httpx.post(site.url + LOGIN_PATH, content=b"UserName=x").status_code == 400


def test_client_credentials_give_a_bearer_token_that_expires(world: World) -> None:
    now = [1000.0]
    standin = CreatioStandIn(world, SOURCE, clock=lambda: now[0], token_lifetime=600)
    standin.start()
    try:
        token_url = standin.identity_url + "/connect/token"
        form = {"grant_type": "client_credentials", "client_id": standin.client_id,
                "client_secret": standin.client_secret}  # fmt: skip
        answer = httpx.post(token_url, data=form).json()
        assert answer["token_type"] == "Bearer" and answer["expires_in"] == 600
        bearer = {"Authorization": f"Bearer {answer['access_token']}"}
        stages = standin.url + "/0/odata/OpportunityStage"
        assert httpx.get(stages, headers=bearer).status_code == 200
        basic = httpx.post(token_url, data={"grant_type": "client_credentials"},
                           auth=(standin.client_id, standin.client_secret))  # fmt: skip
        assert basic.status_code == 200  # client_secret_basic works too
        assert httpx.post(token_url, data={**form, "client_secret": "x"}).json() == {
            "error": "invalid_client"
        }
        wrong_grant = httpx.post(token_url, data={**form, "grant_type": "password"})
        assert wrong_grant.status_code == 400 and wrong_grant.json()["error"] == "unsupported_grant_type"
        now[0] += 601
        assert httpx.get(stages, headers=bearer).status_code == 401
        assert standin.logins == 2
    finally:
        standin.stop()


def test_a_session_dies_after_its_requests_when_the_fault_says_so(world: World) -> None:
    standin = CreatioStandIn(world, SOURCE, faults=Faults(expire_token_after=3))
    standin.start()
    try:
        session = Session(standin)
        assert [session.get("/OpportunityStage").status_code for _ in range(4)] == [200, 200, 200, 401]
        assert session.get("/OpportunityStage").status_code == 401  # gone for good: log in again
        assert Session(standin).get("/OpportunityStage").status_code == 200
    finally:
        standin.stop()


def test_credentials_are_named_for_sources_yaml(site: CreatioStandIn) -> None:
    assert credential_env_names(SOURCE) == ("CREATIO_USER", "CREATIO_PASSWORD", "CREATIO_CLIENT_ID",
                                            "CREATIO_CLIENT_SECRET")  # fmt: skip
    assert credential_env_names("crm_east")[0] == "CRM_EAST_USER"
    env = site.credentials()
    assert env["CREATIO_USER"] == site.username and env["CREATIO_CLIENT_SECRET"] == site.client_secret
    assert (
        len(site.password) == 20
        and site.password == CreatioStandIn(build_world(seed=11, deals=1), SOURCE).password
    )


# -- addresses -----------------------------------------------------------------------------------
def test_each_platform_serves_its_own_url_form_and_iis_answers_the_rest(world: World) -> None:
    core = CreatioStandIn(world, SOURCE, url_form="core")
    core.start()
    try:
        session = Session(core)
        assert session.http.get("/odata/OpportunityStage", headers=session.headers).status_code == 200
        wrong = session.http.get("/0/odata/OpportunityStage", headers=session.headers)
        assert wrong.status_code == 404 and "404 - File or directory not found" in wrong.text
        assert wrong.headers["content-type"].startswith("text/html")
    finally:
        core.stop()
    with pytest.raises(ValueError, match="url_form"):
        CreatioStandIn(world, SOURCE, url_form="mono")  # type: ignore[arg-type]


def test_service_document_metadata_and_unexposed_objects(world: World) -> None:
    standin = CreatioStandIn(world, SOURCE, exposed=["Opportunity", "OpportunityStage"])
    standin.start()
    try:
        session = Session(standin)
        document = session.get("/").json()
        assert [v["name"] for v in document["value"]] == ["Opportunity", "OpportunityStage"]
        assert document["@odata.context"].endswith("/0/odata/$metadata")
        metadata = session.get("/$metadata")
        assert metadata.headers["content-type"].startswith("application/xml")
        root = ET.fromstring(metadata.content)
        edm = "{http://docs.oasis-open.org/odata/ns/edm}"
        types = {t.get("Name"): t for t in root.iter(f"{edm}EntityType")}
        assert set(types) == {"Opportunity", "OpportunityStage"}
        navigations = {n.get("Name") for n in types["Opportunity"].iter(f"{edm}NavigationProperty")}
        assert navigations == {"Stage"}  # only towards exposed objects
        for path in ("/OpportunityCloseReason", "/OpportunityType", "/Opportunity/Nope"):
            missing = session.get(path)
            assert missing.status_code == 404 and "File or directory not found" in missing.text, path
        assert session.http.post("/0/odata/Opportunity", headers=session.headers, json={}).status_code == 405
    finally:
        standin.stop()
    with pytest.raises(ValueError, match="cannot expose"):
        CreatioStandIn(world, SOURCE, exposed=["Lead"])


# -- paging and the row cap ----------------------------------------------------------------------
def test_top_and_skip_page_exactly_through_a_stable_order(api: Session) -> None:
    everything = api.rows("OpportunityInStage", **{"$orderby": "Id asc"})
    assert len(everything) > 200
    pages, skip = [], 0
    while True:
        page = api.rows("OpportunityInStage", **{"$orderby": "Id asc", "$top": "70", "$skip": str(skip)})
        pages.append(page)
        if len(page) < 70:
            break
        skip += 70
    assert [r["Id"] for p in pages for r in p] == [r["Id"] for r in everything]
    assert len(pages) == len(everything) // 70 + 1
    assert api.rows("OpportunityInStage", **{"$skip": str(len(everything))}) == []


def test_no_answer_holds_more_rows_than_the_sites_cap(world: World) -> None:
    standin = CreatioStandIn(world, SOURCE, max_rows=25)
    standin.start()
    try:
        session = Session(standin)
        answer = session.get("/OpportunityInStage", **{"$top": "100", "$count": "true"}).json()
        assert len(answer["value"]) == 25 and answer["@odata.count"] > 100
        assert len(session.rows("OpportunityInStage")) == 25
        assert len(session.rows("OpportunityInStage", **{"$top": "10"})) == 10
        only_count = session.get("/OpportunityInStage", **{"$count": "true", "$top": "0"}).json()
        assert only_count["value"] == [] and only_count["@odata.count"] == answer["@odata.count"]
        plain = session.get("/OpportunityInStage/$count")
        assert (
            plain.headers["content-type"].startswith("text/plain")
            and int(plain.text) == answer["@odata.count"]
        )
    finally:
        standin.stop()
    with pytest.raises(ValueError, match="max_rows"):
        CreatioStandIn(world, SOURCE, max_rows=0)


# -- query options -------------------------------------------------------------------------------
def test_filter_by_date_navigation_and_text(api: Session, world: World) -> None:
    deals = {d.id: d for d in world.deals_of(SOURCE) if d.deleted_at is None}
    all_rows = api.rows("Opportunity")
    middle = sorted(r["ModifiedOn"] for r in all_rows)[len(all_rows) // 2]
    recent = api.rows("Opportunity", **{"$filter": f"ModifiedOn ge {middle}"})
    assert {r["Id"] for r in recent} == {
        r["Id"] for r in all_rows if parse_when(r["ModifiedOn"]) >= parse_when(middle)
    }
    lost = api.rows("Opportunity", **{"$filter": "Stage/End eq true and Stage/Successful eq false"})
    assert {r["Id"] for r in lost} == {k for k, d in deals.items() if d.status == "lost"} != set()
    won_or_lost = api.rows(
        "Opportunity",
        **{"$filter": "Stage/End eq true and (Stage/Successful eq true or Stage/Successful eq false)"},
    )
    assert {r["Id"] for r in won_or_lost} == {k for k, d in deals.items() if d.status != "open"}
    one = next(iter(deals))
    history = api.rows(
        "OpportunityInStage", **{"$filter": f"Opportunity/Id eq {one}", "$orderby": "StartDate asc"}
    )
    assert history and {r["OpportunityId"] for r in history} == {one}
    assert [r["StartDate"] for r in history] == sorted(r["StartDate"] for r in history)
    by_id = api.rows("Opportunity", **{"$filter": f"Id eq {one.upper()}"})
    assert [r["Id"] for r in by_id] == [one]
    word = deals[one].name.split()[1]
    titled = api.rows(
        "Opportunity", **{"$filter": f"contains(Title,'{word}') and not startswith(Title,'Zz')"}
    )
    assert one in {r["Id"] for r in titled} and all(word in r["Title"] for r in titled)
    no_reason = api.rows("Opportunity", **{"$filter": "CloseReason/Id eq null"})
    assert {r["Id"] for r in no_reason} == {r["Id"] for r in all_rows if r["CloseReasonId"] == EMPTY_GUID}


def test_filter_refusals_have_creatios_shapes(api: Session) -> None:
    scalar_fk = api.get("/Opportunity", **{"$filter": f"StageId eq {EMPTY_GUID}"})
    assert scalar_fk.status_code == 500
    assert scalar_fk.json()["error"]["message"] == "An error has occurred."
    assert "Column by path StageId not found in schema Opportunity" in error_text(scalar_fk)
    for expression, expected in (
        (f"Id eq '{EMPTY_GUID}'", "incompatible types"),
        ("Nope eq 1", "Could not find a property named 'Nope' on type 'Terrasoft.Configuration.Opportunity'"),
        (
            "Stage/Nope eq 1",
            "Could not find a property named 'Nope' on type 'Terrasoft.Configuration.OpportunityStage'",
        ),
        ("tolower(Title) eq 'x'", "unknown function with name 'tolower'"),
        ("Title eq", "Expression expected"),
        ("ModifiedOn gt 2024-13-45T00:00:00Z", "Unrecognized 'Edm.DateTimeOffset' literal"),
        ("IsPrimary gt true", "not defined"),
    ):
        response = api.get("/Opportunity", **{"$filter": expression})
        assert response.status_code == 400, expression
        assert "The query specified in the URI is not valid." in error_text(response)
        assert expected in error_text(response), expression
    for option, value in (("$top", "-1"), ("$count", "yes"), ("$search", "x"), ("$orderby", "Stage/Name"),
                          ("$select", "Id,Nope"), ("$expand", "Type")):  # fmt: skip
        assert api.get("/Opportunity", **{option: value}).status_code == 400, option


def test_select_expand_and_orderby(api: Session, world: World) -> None:
    answer = api.get(
        "/Opportunity", **{"$select": "Title,Id", "$top": "3", "$expand": "Stage($select=Name,End),Account"}
    ).json()
    assert answer["@odata.context"].endswith("/$metadata#Opportunity(Id,Title)")
    stages = {s.id: s for p in world.pipelines for s in p.stages}
    for row in answer["value"]:
        assert set(row) == {"Id", "Title", "Stage", "Account"}
        deal = next(d for d in world.deals if d.id == row["Id"])
        assert row["Stage"] == {"Name": stages[deal.stage_id].name, "End": deal.status != "open"}
        assert (row["Account"] is None) == (deal.company_id is None)
    newest_first = api.rows(
        "Opportunity", **{"$orderby": "ModifiedOn desc,Id asc", "$select": "Id,ModifiedOn"}
    )
    assert [r["ModifiedOn"] for r in newest_first] == sorted(
        (r["ModifiedOn"] for r in newest_first), reverse=True
    )
    one = newest_first[0]["Id"]
    single = api.get(f"/Opportunity({one})").json()
    assert single["@odata.context"].endswith("#Opportunity/$entity") and single["Id"] == one
    assert api.get(f"/Opportunity({EMPTY_GUID})").status_code == 404
    strings = api.http.get(api.standin.odata_root + "/Opportunity", params={"$top": "1"},
                           headers={**api.headers, "Accept": "application/json;IEEE754Compatible=true"})  # fmt: skip
    assert isinstance(strings.json()["value"][0]["Amount"], str)
    assert isinstance(api.rows("Opportunity", **{"$top": "1"})[0]["Amount"], int | float)


# -- what is rendered from the world --------------------------------------------------------------
def test_stages_carry_end_and_successful_and_are_numbered_in_order(api: Session, world: World) -> None:
    rows = {r["Id"]: r for r in api.rows("OpportunityStage")}
    pipeline = world.pipelines[0]
    for number, stage in enumerate(sorted(pipeline.stages, key=lambda s: s.sort), start=1):
        row = rows[stage.id]
        assert row["Name"] == stage.name and row["Number"] == number
        assert (row["End"], row["Successful"]) == {
            "won": (True, True), "lost": (True, False), "process": (False, False), "conditional_refusal": (False, False)
        }[stage.kind]  # fmt: skip
    reasons = {r["Id"]: r["Name"] for r in api.rows("OpportunityCloseReason")}
    assert reasons == {r.id: r.name for r in world.loss_reasons}


def test_stage_history_follows_the_opportunity_stage_helper() -> None:
    """One deal walked by hand through every rule: a skip forward, a step back, a new owner
    without a new stage, the conditional refusal, a close."""
    world = build_world(seed=3, deals=5)
    stages = {s.name: s for s in world.pipelines[0].stages}
    numbers = {
        s.id: n for n, s in enumerate(sorted(world.pipelines[0].stages, key=lambda s: s.sort), start=1)
    }
    deal = world.deals[0]
    ivanov, sidorova = (m.key for m in world.managers[:2])
    t0 = world.now - timedelta(days=10)
    pid = deal.pipeline_id
    deal.moves = [
        Move(t0, pid, stages["Квалификация"].id, ivanov, ivanov),
        Move(t0 + timedelta(hours=1), pid, stages["КП отправлено"].id, ivanov, ivanov),  # skips Презентация
        Move(t0 + timedelta(hours=2), pid, stages["Презентация"].id, ivanov, ivanov),  # a step back
        Move(t0 + timedelta(hours=3), pid, stages["Презентация"].id, sidorova, ivanov),  # a new owner
        Move(t0 + timedelta(hours=4), pid, stages["Согласование договора"].id, sidorova, None),  # skips КП
        Move(t0 + timedelta(hours=5), pid, stages["Закрыта и не реализована"].id, sidorova, sidorova),
    ]
    deal.stage_id, deal.manager_key, deal.status = stages["Закрыта и не реализована"].id, sidorova, "lost"
    deal.closed_at = deal.updated_at = t0 + timedelta(hours=5)
    deal.comments = [Comment("1", deal.closed_at, sidorova, "Дорого")]
    standin = CreatioStandIn(world, SOURCE)
    standin.start()
    try:
        session = Session(standin)
        rows = session.rows(
            "OpportunityInStage",
            **{"$filter": f"Opportunity/Id eq {deal.id}", "$orderby": "CreatedOn asc,StartDate asc"},
        )
        opportunity = session.rows("Opportunity", **{"$filter": f"Id eq {deal.id}"})[0]
        owners = {
            r["Id"]: r["ContactId"]
            for r in session.rows("SysAdminUnit", **{"$filter": "SysAdminUnitTypeValue eq 4"})
        }
    finally:
        standin.stop()
    names = {s.id: s.name for s in world.pipelines[0].stages}
    contact = {m.key: m.user_ids[SOURCE] for m in world.managers if SOURCE in m.user_ids}
    got = [(names[r["StageId"]], r["Historical"], r["StartDate"] == r["DueDate"]) for r in rows]
    assert got == [
        ("Квалификация", False, False),
        ("Презентация", True, True),  # the skipped stage: StartDate = DueDate, then the step back
        ("КП отправлено", True, False),
        ("Презентация", False, False),
        ("КП отправлено", False, True),  # skipped again on the way to the contract
        ("Согласование договора", False, False),
        ("Условный отказ", False, True),  # the conditional refusal skipped on the way to lost
        ("Закрыта и не реализована", False, True),  # a final stage ends when it starts
    ]
    first, lost = rows[0], rows[-1]
    assert parse_when(first["StartDate"]) == t0 + timedelta(seconds=numbers[first["StageId"]])
    assert parse_when(first["CreatedOn"]) == t0 and parse_when(first["DueDate"]) == t0 + timedelta(hours=1)
    assert parse_when(lost["StartDate"]) == deal.closed_at + timedelta(seconds=numbers[lost["StageId"]])
    back = rows[3]
    assert back["OwnerId"] == contact[sidorova] and parse_when(back["ModifiedOn"]) == t0 + timedelta(hours=4)
    assert rows[0]["OwnerId"] == contact[ivanov]
    assert opportunity["OwnerId"] == contact[sidorova] and opportunity["Notes"] == "Дорого"
    assert parse_when(opportunity["DueDate"]) == deal.closed_at and opportunity["Probability"] == 0
    assert contact[sidorova] in owners.values()


def test_deleted_deals_vanish_with_their_history_and_people_are_contacts(api: Session, world: World) -> None:
    gone = [d.id for d in world.deals_of(SOURCE) if d.deleted_at is not None]
    assert gone
    served = {r["Id"] for r in api.rows("Opportunity")}
    assert not served & set(gone)
    assert not {r["OpportunityId"] for r in api.rows("OpportunityInStage")} & set(gone)
    users = api.rows("SysAdminUnit", **{"$filter": "SysAdminUnitTypeValue eq 4"})
    contacts = {r["Id"]: r for r in api.rows("Contact")}
    site_managers = [m for m in world.managers if SOURCE in m.user_ids]
    assert len(users) == len(site_managers) + 1  # and the Supervisor
    for manager in site_managers:
        user = next(u for u in users if u["ContactId"] == manager.user_ids[SOURCE])
        assert user["Active"] == manager.active[SOURCE] and user["Email"] == manager.emails_by_source[SOURCE]
        assert contacts[manager.user_ids[SOURCE]]["Name"] == manager.name
    accounts = {r["Id"]: r for r in api.rows("Account")}
    for company in (c for c in world.companies if c.source_name == SOURCE):
        assert accounts[company.id]["INN"] == (company.inn_rendered or "")


def test_the_inn_lives_where_the_site_keeps_it(world: World) -> None:
    for inn_field in ("UsrINN", None):
        standin = CreatioStandIn(world, SOURCE, inn_field=inn_field)
        standin.start()
        try:
            account = Session(standin).rows("Account", **{"$top": "1"})[0]
        finally:
            standin.stop()
        assert "INN" not in account
        assert (inn_field in account) if inn_field else not any("INN" in k.upper() for k in account)


# -- faults ----------------------------------------------------------------------------------------
def test_faults_answer_in_creatios_shapes(world: World) -> None:
    standin = CreatioStandIn(world, SOURCE, faults=Faults(seed=1, burst_every=4, burst_length=4))
    standin.start()
    try:
        statuses = [httpx.get(standin.url + "/0/odata/").status_code for _ in range(12)]
    finally:
        standin.stop()
    assert {429, 503} <= set(statuses)
    erroring = CreatioStandIn(world, SOURCE, faults=Faults(seed=1, error_rate=1.0))
    erroring.start()
    try:
        response = httpx.get(erroring.url + "/0/odata/")
    finally:
        erroring.stop()
    assert response.status_code == 500 and response.json() == {
        "error": {"code": "", "message": "An error has occurred."}
    }
    other = build_world(seed=1, deals=1)
    other.sources.append(Source("amo_retail", "amocrm"))
    with pytest.raises(ValueError, match="not a Creatio site"):
        CreatioStandIn(other, "amo_retail")
