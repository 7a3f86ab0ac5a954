"""The 1C OData stand-in over real HTTP: what it serves, how it filters and pages, how it fails."""

from __future__ import annotations

import json
import random
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from sandbox.onec import PUBLICATION, OneCStandIn
from sandbox.onec.odata import ODataQueryError, compile_filter
from sandbox.onec.schema import DEALS, EMPTY_DATE, EMPTY_REF
from sandbox.standin import Faults
from sandbox.world.model import (
    Comment,
    Company,
    Deal,
    LossReason,
    Manager,
    Move,
    Pipeline,
    Source,
    Stage,
    World,
)

SOURCE = "erp"
MOSCOW = ZoneInfo("Europe/Moscow")
DEALS_SET = "Catalog_СделкиСКлиентами"
STATS_SET = "InformationRegister_СтатистикаСделокСКлиентами"
PREDEFINED = [
    ("ПервичныйКонтакт", "Первичный контакт"),
    ("КвалификацияКлиента", "Квалификация клиента"),
    ("ФормированиеПредложения", "Формирование предложения"),
    ("Презентация", "Презентация"),
    ("СогласованиеУсловий", "Согласование условий"),
    ("ПодготовкаКВыполнениюОбязательств", "Подготовка к выполнению обязательств"),
    ("ВыполнениеОбязательств", "Выполнение обязательств"),
]
REENTERED_DEAL = "REENTERED"


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def build_world(seed: int = 7) -> World:
    """A small 1C world with every case the stand-in must render: re-entered stages, deleted
    and defective deals, deals in three currencies, won/lost/open deals."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 10, 6, 30, tzinfo=UTC)
    managers = [
        Manager(
            key=f"m0{i}",
            name=name,
            email=f"user{i}@example.ru",
            strengths={},
            user_ids={SOURCE: _guid(rng)},
            emails_by_source={SOURCE: f"User{i}@Example.ru"},
            active={SOURCE: i != 3},
        )
        for i, name in enumerate(["Иванов Иван", "Сидоров Пётр", "Кузнецова Анна"], start=1)
    ]
    companies = [
        Company(
            id=_guid(rng),
            source_name=SOURCE,
            name=f"ООО «Клиент {i}»",
            inn_canonical=inn,
            inn_rendered=rendered,
            customer_key=f"c000{i}",
            created_at=start - timedelta(days=100 + i),
            updated_at=start - timedelta(days=10),
        )
        for i, (inn, rendered) in enumerate(
            [
                ("7701234567", "7701234567"),
                ("7702345678", "77 02 345678"),
                ("770312345678", "770312345678"),
                (None, ""),
            ],
            start=1,
        )
    ]
    stages = [
        Stage(
            id=_guid(rng),
            name=name,
            kind="process",
            sort=n * 10,
            canonical=f"s{n}",
            predefined_name=predefined,
        )
        for n, (predefined, name) in enumerate(PREDEFINED, start=1)
    ]
    pipeline = Pipeline(
        id=_guid(rng), source_name=SOURCE, name="Типовая продажа", stages=stages, is_main=True
    )
    reasons = [
        LossReason(id=_guid(rng), source_name=SOURCE, name=name, canonical=code)
        for name, code in [
            ("Высокая цена", "price"),
            ("Нет бюджета", "no_budget"),
            ("Выбрали конкурента", None),
        ]
    ]
    deals: list[Deal] = []
    statuses = ["won", "lost", "open"]
    currencies = ["RUB", "RUB", "USD", "EUR"]
    for n in range(1, 15):
        created = start + timedelta(days=3 * n, hours=n)
        manager = managers[n % 3]
        depth = 1 + n % 6
        path = list(range(depth))
        if n == 5:
            path = [0, 1, 2, 1, 3]  # stage 2 (index 1) entered twice
        moves = [
            Move(
                at=created + timedelta(days=2 * k, hours=k),
                pipeline_id=pipeline.id,
                stage_id=stages[i].id,
                manager_key=managers[(n + k) % 3].key,
            )
            for k, i in enumerate(path)
        ]
        status = statuses[n % 3]
        closed = moves[-1].at + timedelta(days=1, minutes=17) if status != "open" else None
        deal = Deal(
            id=_guid(rng),
            source_name=SOURCE,
            number=f"{n:09d}",
            name=f"Сделка №{n}",
            pipeline_id=pipeline.id,
            stage_id=moves[-1].stage_id,
            manager_key=manager.key,
            company_id=companies[n % 4].id,
            contact_ids=[],
            amount=Decimal(50_000 * n) + (Decimal("0.50") if n % 4 == 0 else 0),
            currency=currencies[n % 4],
            created_at=created,
            updated_at=closed or moves[-1].at,
            closed_at=closed,
            status=status,  # type: ignore[arg-type]
            loss_reason_id=reasons[n % 3].id if status == "lost" and n != 4 else None,
            comments=[
                Comment(id=f"k{n}", at=created, author_key=manager.key, text=f"Клиент ушёл, сделка {n}")
            ]
            if status == "lost"
            else [],
            moves=moves,
        )
        if n == 5:
            deal.name = REENTERED_DEAL
        if n == 7:
            deal.deleted_at = created + timedelta(days=30)
        if n in (4, 8):
            deal.defects.add("onec_empty_dates")
        if n in (2, 8):
            deal.defects.add("onec_empty_refs")
        deals.append(deal)
    rates = {}
    for k in range(40):
        day = date(2025, 1, 1) + timedelta(days=k)
        rates[("USD", day)] = Decimal("95.5") + Decimal(k) / 10
        rates[("EUR", day)] = Decimal("101.25") + Decimal(k) / 20
    return World(
        seed=seed,
        size=len(deals),
        now=start + timedelta(days=60),
        sources=[Source(SOURCE, "onec")],
        managers=managers,
        companies=companies,
        contacts=[],
        pipelines=[pipeline],
        loss_reasons=reasons,
        deals=deals,
        rates=rates,
    )


def local(at: datetime | None) -> str:
    """The world's UTC time as the base writes it: Moscow time, no zone."""
    if at is None:
        return EMPTY_DATE
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(MOSCOW).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture(scope="module")
def standin(world: World) -> Iterator[OneCStandIn]:
    server = OneCStandIn(world, SOURCE)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(standin: OneCStandIn) -> Iterator[httpx.Client]:
    creds = standin.credentials()
    with httpx.Client(
        base_url=standin.base_url + "/", auth=(creds["ONEC_USER"], creds["ONEC_PASSWORD"]), timeout=10
    ) as c:
        yield c


def get_all(client: httpx.Client, set_name: str, **params: str) -> list[dict]:
    response = client.get(set_name, params={"$format": "json", **params})
    assert response.status_code == 200, response.text
    return response.json()["value"]


def deals_of(world: World) -> list[Deal]:
    return world.deals_of(SOURCE)


# -- service document, metadata, auth --------------------------------------------------


def test_service_document_lists_every_published_set(client: httpx.Client, standin: OneCStandIn) -> None:
    body = client.get("", params={"$format": "json"}).json()
    names = {v["name"] for v in body["value"]}
    assert names == {
        "Catalog_СделкиСКлиентами",
        "Catalog_ВидыСделокСКлиентами",
        "Catalog_СостоянияПроцессов",
        "InformationRegister_СтатистикаСделокСКлиентами",
        "Catalog_ПричиныПроигрышаСделок",
        "Catalog_Партнеры",
        "Catalog_Контрагенты",
        "Catalog_Пользователи",
        "Catalog_Валюты",
        "InformationRegister_КурсыВалют",
    }
    assert body["odata.metadata"].endswith(f"{PUBLICATION}/$metadata")
    xml = client.get("")  # the browser's view: Atom service document
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(xml.content)
    hrefs = {c.get("href") for c in root.iter("{http://www.w3.org/2007/app}collection")}
    assert hrefs == names


def test_metadata_describes_sets_and_keys(client: httpx.Client) -> None:
    response = client.get("$metadata")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    edm = "{http://schemas.microsoft.com/ado/2009/11/edm}"
    types = {t.get("Name"): t for t in root.iter(f"{edm}EntityType")}
    deal_type = types[DEALS_SET]
    assert [r.get("Name") for r in deal_type.iter(f"{edm}PropertyRef")] == ["Ref_Key"]
    props = {p.get("Name"): p.get("Type") for p in deal_type.iter(f"{edm}Property")}
    assert props["ДатаНачала"] == "Edm.DateTime" and props["Партнер_Key"] == "Edm.Guid"
    stats_keys = [r.get("Name") for r in types[STATS_SET].iter(f"{edm}PropertyRef")]
    assert stats_keys == ["Сделка_Key", "ЭтапПроцесса_Key"]


def test_bad_or_missing_credentials_get_401_with_basic_challenge(standin: OneCStandIn) -> None:
    url = standin.base_url + "/" + DEALS_SET
    wrong = httpx.get(url, params={"$format": "json"}, auth=("odata", "wrong"))
    missing = httpx.get(url, params={"$format": "json"})
    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")


def test_credentials_are_named_for_the_connection_and_follow_the_seed(world: World) -> None:
    creds = OneCStandIn(world, SOURCE).credentials()
    assert set(creds) == {"ONEC_USER", "ONEC_PASSWORD"}
    assert creds == OneCStandIn(build_world(), SOURCE).credentials()
    other_world = build_world(seed=8)
    assert OneCStandIn(other_world, SOURCE).credentials()["ONEC_PASSWORD"] != creds["ONEC_PASSWORD"]
    other_world.sources.append(Source("erp_msk", "onec"))
    assert set(OneCStandIn(other_world, "erp_msk").credentials()) == {"ERP_MSK_USER", "ERP_MSK_PASSWORD"}


# -- deals ---------------------------------------------------------------------------------


def test_deals_render_every_field_of_the_world(client: httpx.Client, world: World) -> None:
    served = {d["Ref_Key"]: d for d in get_all(client, DEALS_SET)}
    assert set(served) == {d.id for d in deals_of(world)}
    managers = {m.key: m for m in world.managers}
    for deal in deals_of(world):
        row = served[deal.id]
        assert row["Code"] == deal.number and row["Description"] == deal.name
        assert row["Статус"] == {"open": "ВРаботе", "won": "Выиграна", "lost": "Проиграна"}[deal.status]
        assert row["Закрыта"] is (deal.status != "open")
        assert row["DeletionMark"] is (deal.deleted_at is not None)
        assert row["ВидСделки_Key"] == deal.pipeline_id
        assert row["Партнер_Key"] == deal.company_id
        assert row["ПричинаПроигрышаСделки_Key"] == (deal.loss_reason_id or EMPTY_REF)
        assert Decimal(str(row["ПотенциальнаяСуммаПродажи"])) == deal.amount
        assert row["ДатаНачала"] == local(deal.created_at)
        assert row["ДатаОкончания"] == local(deal.closed_at)
        assert row["Комментарий"] == "\n".join(c.text for c in deal.comments)
        expected_user = (
            EMPTY_REF if "onec_empty_refs" in deal.defects else managers[deal.manager_key].user_ids[SOURCE]
        )
        assert row["Ответственный_Key"] == expected_user
        assert row["Партнер@navigationLinkUrl"] == f"{DEALS_SET}(guid'{deal.id}')/Партнер"
        assert set(row) >= {"DataVersion", "Predefined", "PredefinedDataName", "IsFolder", "Parent_Key"}
    assert any(r["ДатаОкончания"] == EMPTY_DATE for r in served.values())  # open deals
    assert sum(r["DeletionMark"] for r in served.values()) == 1


def test_currency_references_resolve_to_currency_catalog(client: httpx.Client, world: World) -> None:
    currencies = {c["Ref_Key"]: c for c in get_all(client, "Catalog_Валюты")}
    assert sorted(c["Code"] for c in currencies.values()) == ["643", "840", "978"]
    codes = {"643": "RUB", "840": "USD", "978": "EUR"}
    served = {d["Ref_Key"]: d for d in get_all(client, DEALS_SET)}
    for deal in deals_of(world):
        assert codes[currencies[served[deal.id]["ВалютаПервичногоСпроса_Key"]]["Code"]] == deal.currency


def test_paging_with_stable_orderby_returns_every_deal_once(client: httpx.Client, world: World) -> None:
    seen: list[str] = []
    skip = 0
    while True:
        page = get_all(
            client, DEALS_SET, **{"$orderby": "ДатаНачала asc, Ref_Key", "$top": "4", "$skip": str(skip)}
        )
        if not page:
            break
        assert len(page) <= 4
        seen += [d["Ref_Key"] for d in page]
        skip += 4
    assert len(seen) == len(set(seen)) == len(deals_of(world))
    assert set(seen) == {d.id for d in deals_of(world)}
    assert seen == [d.id for d in sorted(deals_of(world), key=lambda d: (d.created_at, d.id))]


def test_orderby_several_fields_with_directions(client: httpx.Client, world: World) -> None:
    rows = get_all(client, DEALS_SET, **{"$orderby": "Статус desc, ПотенциальнаяСуммаПродажи asc"})
    got = [(r["Статус"], r["ПотенциальнаяСуммаПродажи"]) for r in rows]
    by_status = sorted(got, key=lambda t: t[1])
    expected = sorted(by_status, key=lambda t: t[0], reverse=True)
    assert got == expected and len({s for s, _ in got}) == 3


@pytest.mark.parametrize(
    ("op", "check"),
    [
        ("eq", lambda a, b: a == b),
        ("ne", lambda a, b: a != b),
        ("gt", lambda a, b: a > b),
        ("ge", lambda a, b: a >= b),
        ("lt", lambda a, b: a < b),
        ("le", lambda a, b: a <= b),
    ],
)
def test_filter_comparison_operators_on_datetime(client: httpx.Client, world: World, op: str, check) -> None:
    pivot = sorted(deals_of(world), key=lambda d: d.created_at)[6]
    literal = local(pivot.created_at)
    rows = get_all(client, DEALS_SET, **{"$filter": f"ДатаНачала {op} datetime'{literal}'"})
    expected = {d.id for d in deals_of(world) if check(local(d.created_at), literal)}
    assert expected and {r["Ref_Key"] for r in rows} == expected


def test_filter_guid_literal_boolean_logic_and_parentheses(client: httpx.Client, world: World) -> None:
    deal = deals_of(world)[3]
    assert [
        r["Ref_Key"] for r in get_all(client, DEALS_SET, **{"$filter": f"Ref_Key eq guid'{deal.id}'"})
    ] == [deal.id]
    company = world.companies[1].id
    rows = get_all(client, DEALS_SET, **{"$filter": f"Партнер_Key eq guid'{company.upper()}'"})
    assert {r["Ref_Key"] for r in rows} == {d.id for d in deals_of(world) if d.company_id == company}
    flt = "(Статус eq 'Проиграна' or Статус eq 'Выиграна') and not DeletionMark and ПотенциальнаяСуммаПродажи gt 150000"
    rows = get_all(client, DEALS_SET, **{"$filter": flt})
    expected = {
        d.id for d in deals_of(world) if d.status != "open" and d.deleted_at is None and d.amount > 150000
    }
    assert expected and {r["Ref_Key"] for r in rows} == expected
    rows = get_all(client, DEALS_SET, **{"$filter": "DeletionMark eq true or Закрыта eq false"})
    expected = {d.id for d in deals_of(world) if d.deleted_at is not None or d.status == "open"}
    assert {r["Ref_Key"] for r in rows} == expected
    none = get_all(
        client,
        DEALS_SET,
        **{"$filter": f"ПричинаПроигрышаСделки_Key ne guid'{EMPTY_REF}' and Статус eq 'ВРаботе'"},
    )
    assert none == []


def test_count_of_lost_deals_matches_the_world(client: httpx.Client, world: World) -> None:
    lost = sum(1 for d in deals_of(world) if d.status == "lost")
    assert lost > 0
    body = client.get(
        DEALS_SET,
        params={
            "$format": "json",
            "$filter": "Статус eq 'Проиграна'",
            "$inlinecount": "allpages",
            "$top": "1",
            "$skip": "1",
        },
    ).json()
    assert body["odata.count"] == str(lost)
    assert len(body["value"]) == lost  # $inlinecount makes 1C ignore $skip/$top
    count = client.get(f"{DEALS_SET}/$count", params={"$filter": "Статус eq 'Проиграна'"})
    assert count.status_code == 200 and int(count.text) == lost


def test_select_returns_only_the_named_properties(client: httpx.Client, world: World) -> None:
    rows = get_all(client, DEALS_SET, **{"$select": "Статус, Ref_Key,Description"})
    assert len(rows) == len(deals_of(world))
    assert all(list(r) == ["Ref_Key", "Description", "Статус"] for r in rows)


def test_single_deal_by_key_and_missing_key(client: httpx.Client, world: World) -> None:
    deal = deals_of(world)[0]
    one = client.get(f"{DEALS_SET}(guid'{deal.id}')", params={"$format": "json"})
    assert one.status_code == 200 and one.json()["Ref_Key"] == deal.id
    assert one.json()["odata.metadata"].endswith(f"$metadata#{DEALS_SET}/@Element")
    missing = client.get(f"{DEALS_SET}(guid'{uuid.UUID(int=1)}')", params={"$format": "json"})
    assert missing.status_code == 404
    assert missing.json()["odata.error"]["code"] == "9"


# -- stage statistics register ---------------------------------------------------------------


def expected_stats(deal: Deal) -> dict[str, tuple[str, str]]:
    """stage -> (start, end) of the LAST visit, as the register keeps it."""
    out = {}
    moves = sorted(deal.moves, key=lambda m: m.at)
    for stage in {m.stage_id for m in moves}:
        last = max(i for i, m in enumerate(moves) if m.stage_id == stage)
        end = moves[last + 1].at if last + 1 < len(moves) else deal.closed_at
        if "onec_empty_dates" in deal.defects:
            end = None
        out[stage] = (local(moves[last].at), local(end))
    return out


def test_stats_register_has_one_row_per_deal_and_stage_with_last_visit(
    client: httpx.Client, world: World
) -> None:
    rows = get_all(client, STATS_SET)
    keys = [(r["Сделка_Key"], r["ЭтапПроцесса_Key"]) for r in rows]
    assert len(keys) == len(set(keys))
    expected = {(d.id, s): dates for d in deals_of(world) for s, dates in expected_stats(d).items()}
    assert set(keys) == set(expected)
    for r in rows:
        assert (r["ДатаНачала"], r["ДатаОкончания"]) == expected[(r["Сделка_Key"], r["ЭтапПроцесса_Key"])]
    reentered = next(d for d in deals_of(world) if d.name == REENTERED_DEAL)
    assert len([r for r in rows if r["Сделка_Key"] == reentered.id]) == len(reentered.moves) - 1
    second = reentered.moves[1].stage_id
    row = next(r for r in rows if r["Сделка_Key"] == reentered.id and r["ЭтапПроцесса_Key"] == second)
    assert row["ДатаНачала"] == local(reentered.moves[3].at)  # the later visit overwrote the first
    assert row["ДатаОкончания"] == local(reentered.moves[4].at)


def test_stats_register_result_and_responsible(client: httpx.Client, world: World) -> None:
    rows = get_all(client, STATS_SET)
    users = {m.key: m.user_ids[SOURCE] for m in world.managers}
    for deal in deals_of(world):
        last = sorted(deal.moves, key=lambda m: m.at)[-1]
        row = next(r for r in rows if r["Сделка_Key"] == deal.id and r["ЭтапПроцесса_Key"] == last.stage_id)
        assert row["Результат"] == {"open": "ВРаботе", "won": "Выиграна", "lost": "Проиграна"}[deal.status]
        assert row["Ответственный_Key"] == users[last.manager_key]  # kept even where the deal's ref is empty


def test_empty_dates_and_refs_where_the_defects_are(client: httpx.Client, world: World) -> None:
    deals = {d["Ref_Key"]: d for d in get_all(client, DEALS_SET)}
    stats = get_all(client, STATS_SET)
    for deal in deals_of(world):
        ends = [r["ДатаОкончания"] for r in stats if r["Сделка_Key"] == deal.id]
        if "onec_empty_dates" in deal.defects:
            assert ends and all(e == EMPTY_DATE for e in ends)
        elif deal.status != "open":
            assert EMPTY_DATE not in ends
        empty_ref = deals[deal.id]["Ответственный_Key"] == EMPTY_REF
        assert empty_ref is ("onec_empty_refs" in deal.defects)
    filtered = get_all(client, DEALS_SET, **{"$filter": f"Ответственный_Key eq guid'{EMPTY_REF}'"})
    assert {r["Ref_Key"] for r in filtered} == {
        d.id for d in deals_of(world) if "onec_empty_refs" in d.defects
    }
    stats_empty = get_all(client, STATS_SET, **{"$filter": "ДатаОкончания eq datetime'0001-01-01T00:00:00'"})
    assert {r["Сделка_Key"] for r in stats_empty} >= {
        d.id for d in deals_of(world) if "onec_empty_dates" in d.defects
    }


# -- reference catalogs and rates --------------------------------------------------------


def test_stages_kinds_reasons_partners_counterparties_users(client: httpx.Client, world: World) -> None:
    pipeline = world.pipelines[0]
    stages = get_all(client, "Catalog_СостоянияПроцессов", **{"$orderby": "РеквизитДопУпорядочивания"})
    assert [s["PredefinedDataName"] for s in stages] == [p for p, _ in PREDEFINED]
    assert [s["Ref_Key"] for s in stages] == [s.id for s in pipeline.stages]
    assert all(s["Predefined"] for s in stages)
    kinds = get_all(client, "Catalog_ВидыСделокСКлиентами")
    assert [k["Ref_Key"] for k in kinds] == [pipeline.id] and kinds[0]["ТипСделки"] == "ТиповаяПродажа"
    assert [row["Этап_Key"] for row in kinds[0]["Этапы"]] == [s.id for s in pipeline.stages]
    assert kinds[0]["Этапы"][0]["LineNumber"] == "1"
    reasons = get_all(client, "Catalog_ПричиныПроигрышаСделок")
    assert {r["Ref_Key"]: r["Description"] for r in reasons} == {r.id: r.name for r in world.loss_reasons}
    partners = {p["Ref_Key"] for p in get_all(client, "Catalog_Партнеры")}
    assert partners == {c.id for c in world.companies}
    counterparties = get_all(client, "Catalog_Контрагенты")
    assert {c["Партнер_Key"]: c["ИНН"] for c in counterparties} == {
        c.id: c.inn_rendered for c in world.companies
    }
    assert not partners & {c["Ref_Key"] for c in counterparties}
    users = {u["Ref_Key"]: u for u in get_all(client, "Catalog_Пользователи")}
    for manager in world.managers:
        user = users[manager.user_ids[SOURCE]]
        assert user["Description"] == manager.name
        assert user["Недействителен"] is (not manager.active[SOURCE])
        assert user["КонтактнаяИнформация"][0]["АдресЭП"] == manager.emails_by_source[SOURCE]


def test_exchange_rates_are_served_per_day(client: httpx.Client, world: World) -> None:
    currencies = {c["Ref_Key"]: c["Description"] for c in get_all(client, "Catalog_Валюты")}
    rows = get_all(client, "InformationRegister_КурсыВалют")
    served = {(currencies[r["Валюта_Key"]], r["Period"]): r for r in rows}
    for (currency, day), rate in world.rates.items():
        row = served[(currency, f"{day.isoformat()}T00:00:00")]
        assert Decimal(str(row["Курс"])) == rate and row["Кратность"] == 1
    assert len(rows) == len(world.rates) + 1  # plus the base currency's rate of 1
    usd = next(k for k, v in currencies.items() if v == "USD")
    in_january = get_all(
        client,
        "InformationRegister_КурсыВалют",
        **{"$filter": f"Валюта_Key eq guid'{usd}' and Period lt datetime'2025-02-01T00:00:00'"},
    )
    assert len(in_january) == 31
    one = in_january[0]
    key = f"Period=datetime'{one['Period']}',Валюта_Key=guid'{usd}'"
    by_key = client.get(f"InformationRegister_КурсыВалют({key})", params={"$format": "json"})
    assert by_key.status_code == 200 and by_key.json()["Курс"] == one["Курс"]


# -- errors ----------------------------------------------------------------------------------


def error_of(response: httpx.Response) -> dict:
    body = response.json()["odata.error"]
    assert body["message"]["lang"] == "ru" and body["message"]["value"]
    return body


def test_unknown_and_unpublished_sets_are_404_code_9(client: httpx.Client, world: World) -> None:
    response = client.get("Catalog_Несуществующий", params={"$format": "json"})
    assert response.status_code == 404
    assert error_of(response)["code"] == "9"
    server = OneCStandIn(world, SOURCE, published=[DEALS_SET])
    server.start()
    try:
        creds = server.credentials()
        auth = (creds["ONEC_USER"], creds["ONEC_PASSWORD"])
        doc = httpx.get(server.base_url + "/", params={"$format": "json"}, auth=auth).json()
        assert [v["name"] for v in doc["value"]] == [DEALS_SET]
        hidden = httpx.get(server.base_url + "/" + STATS_SET, params={"$format": "json"}, auth=auth)
        assert hidden.status_code == 404 and error_of(hidden)["code"] == "9"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("flt", "code"),
    [
        ("Статус eq", "14"),
        ("Статус eq 'Проиграна' and", "14"),
        ("(Статус eq 'Проиграна'", "14"),
        ("Статус == 'Проиграна'", "14"),
        ("Ref_Key eq 'not-a-guid-literal'", "14"),
        ("ДатаНачала gt '2025-01-01'", "14"),
        ("Ref_Key eq guid'123'", "14"),
        ("ДатаНачала gt datetime'вчера'", "14"),
        ("НетТакогоПоля eq 1", "10"),
        ("substringof('x', Description)", "21"),
    ],
)
def test_malformed_filter_is_400_odata_error(client: httpx.Client, flt: str, code: str) -> None:
    response = client.get(DEALS_SET, params={"$format": "json", "$filter": flt})
    assert response.status_code == 400
    assert error_of(response)["code"] == code


def test_other_refusals_are_odata_errors(client: httpx.Client) -> None:
    no_format = client.get(DEALS_SET)
    assert no_format.status_code == 400 and error_of(no_format)["code"] == "3"
    accept_json = client.get(DEALS_SET, headers={"Accept": "application/json"}, params={"$top": "1"})
    assert accept_json.status_code == 200 and len(accept_json.json()["value"]) == 1
    bad_select = client.get(DEALS_SET, params={"$format": "json", "$select": "Ref_Key,Нет"})
    assert bad_select.status_code == 400 and error_of(bad_select)["code"] == "10"
    bad_top = client.get(DEALS_SET, params={"$format": "json", "$top": "-1"})
    assert bad_top.status_code == 400 and error_of(bad_top)["code"] == "14"
    write = client.post(DEALS_SET, params={"$format": "json"}, json={})
    assert write.status_code == 405 and error_of(write)["code"] == "19"


def test_nometadata_drops_metadata_and_links(client: httpx.Client) -> None:
    body = client.get(DEALS_SET, params={"$format": "application/json;odata=nometadata", "$top": "1"}).json()
    assert "odata.metadata" not in body
    assert not any("@navigationLinkUrl" in k for k in body["value"][0])


def test_filter_parser_handles_quotes_and_rejects_literal_pairs() -> None:
    row = {"Description": "ООО 'Ромашка'", "Ref_Key": EMPTY_REF}
    assert compile_filter("Description eq 'ООО ''Ромашка'''", DEALS)(row)
    with pytest.raises(ODataQueryError):
        compile_filter("1 eq 1", DEALS)


# -- a changing world, faults ------------------------------------------------------------


def test_current_world_is_served_and_data_version_follows_content() -> None:
    world = build_world()
    server = OneCStandIn(world, SOURCE)
    server.start()
    creds = server.credentials()
    try:
        with httpx.Client(
            base_url=server.base_url + "/", auth=(creds["ONEC_USER"], creds["ONEC_PASSWORD"])
        ) as c:
            before = {d["Ref_Key"]: d["DataVersion"] for d in get_all(c, DEALS_SET)}
            again = {d["Ref_Key"]: d["DataVersion"] for d in get_all(c, DEALS_SET)}
            assert before == again
            changed = world.deals[0]
            with server.lock:
                changed.status = "lost"
                changed.closed_at = changed.moves[-1].at + timedelta(days=3)
                added = build_world(seed=99).deals[0]
                world.deals.append(added)
            after = {d["Ref_Key"]: d["DataVersion"] for d in get_all(c, DEALS_SET)}
            assert after[changed.id] != before[changed.id]
            assert {k: v for k, v in after.items() if k not in (changed.id, added.id)} == {
                k: v for k, v in before.items() if k != changed.id
            }
            assert added.id in after
    finally:
        server.stop()


def test_faults_look_like_1c_and_its_web_server(world: World) -> None:
    def fetch(faults: Faults) -> httpx.Response:
        server = OneCStandIn(world, SOURCE, faults=faults)
        server.start()
        try:
            creds = server.credentials()
            return httpx.get(
                server.base_url + "/" + DEALS_SET,
                params={"$format": "json"},
                auth=(creds["ONEC_USER"], creds["ONEC_PASSWORD"]),
            )
        finally:
            server.stop()

    error = fetch(Faults(error_rate=1.0))
    assert error.status_code == 500
    assert error.json()["odata.error"] == {
        "code": "-1",
        "message": {"lang": "ru", "value": "Произошла внутренняя ошибка OData сервиса"},
    }
    truncated = fetch(Faults(truncate_rate=1.0))
    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.text)
    with pytest.raises(httpx.TransportError):
        fetch(Faults(drop_rate=1.0))

    server = OneCStandIn(world, SOURCE, faults=Faults(burst_every=4, burst_length=2))
    server.start()
    try:
        creds = server.credentials()
        auth = (creds["ONEC_USER"], creds["ONEC_PASSWORD"])
        statuses = [
            httpx.get(
                server.base_url + "/" + DEALS_SET, params={"$format": "json", "$top": "1"}, auth=auth
            ).status_code
            for _ in range(9)
        ]
    finally:
        server.stop()
    assert statuses == [200, 200, 200, 503, 503, 200, 200, 503, 503]


# -- the generated world -------------------------------------------------------------------


def test_generated_world_pages_counts_and_stats() -> None:
    """The invariants above, on the world the sandbox generator builds for the demo."""
    generate = pytest.importorskip("sandbox.world.generate").generate
    world = generate(7, 300)
    server = OneCStandIn(world, SOURCE)
    server.start()
    creds = server.credentials()
    try:
        with httpx.Client(
            base_url=server.base_url + "/", auth=(creds["ONEC_USER"], creds["ONEC_PASSWORD"]), timeout=30
        ) as c:
            seen: list[str] = []
            while page := get_all(
                c, DEALS_SET, **{"$orderby": "Ref_Key", "$top": "50", "$skip": str(len(seen))}
            ):
                seen += [d["Ref_Key"] for d in page]
            assert sorted(seen) == sorted(d.id for d in deals_of(world)) and seen
            lost = c.get(f"{DEALS_SET}/$count", params={"$filter": "Статус eq 'Проиграна'"})
            assert int(lost.text) == sum(1 for d in deals_of(world) if d.status == "lost") > 0
            stats = get_all(c, STATS_SET)
            expected = {(d.id, s): dates for d in deals_of(world) for s, dates in expected_stats(d).items()}
            assert {
                (r["Сделка_Key"], r["ЭтапПроцесса_Key"]): (r["ДатаНачала"], r["ДатаОкончания"]) for r in stats
            } == (expected)
            assert len(stats) == len(expected)
            assert get_all(c, "InformationRegister_КурсыВалют", **{"$top": "1"})
    finally:
        server.stop()
