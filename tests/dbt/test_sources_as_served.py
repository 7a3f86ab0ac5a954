"""Records written by hand the way each API serves them (amoCRM unix seconds and embedded
loss reasons, Bitrix24 strings with offsets and enumeration fields, 1C zone-less dates,
empty dates and empty references), landed in the raw tables and built: each source's quirks
end up right in the marts, and one customer and one manager are one across systems."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.dbt.config_files import write_config
from tests.dbt.conftest import DEAL_MODELS, Dbt, clean_warehouse
from tests.dbt.landing import land
from tests.dbt.truth_compare import rows

SOURCES = """
sources:
  - name: amo_retail
    type: amocrm
    base_url: https://retail.amocrm.ru
    auth:
      client_id: ${AMO_RETAIL_CLIENT_ID}
      client_secret: ${AMO_RETAIL_CLIENT_SECRET}
      redirect_uri: https://example.com/oauth
      refresh_token: ${AMO_RETAIL_REFRESH_TOKEN}
  - name: b24_wholesale
    type: bitrix24
    webhook_url: ${B24_WHOLESALE_WEBHOOK}
    portal_url: https://wholesale.bitrix24.ru
  - name: erp
    type: onec
    base_url: http://erp.local/trade/odata/standard.odata
    username: ${ONEC_USER}
    password: ${ONEC_PASSWORD}
    timezone: Europe/Moscow
"""

FUNNEL = """
timezone: Europe/Moscow
base_currency: RUB
stages:
  - {code: new, name: Новая заявка, target_conversion: 1.0, max_days: 2}
  - {code: contact, name: Первичный контакт, target_conversion: 0.8, max_days: 5}
  - {code: proposal, name: КП отправлено, target_conversion: 0.8, max_days: 10}
  - {code: paid, name: Оплачено}
loss_reasons:
  - {code: no_budget, name: Нет бюджета, reactivate_after_days: 60}
  - {code: high_price, name: Высокая цена}
  - {code: other, name: Другое}
people:
  - name: Сидоров Пётр
    email: sidorov@corp.ru
    ids: ["erp:00000000-0000-0000-0000-0000000000u1"]
sources:
  amo_retail:
    stages: {Новая: new, Контакт: contact}
    conditional_refusal_stage: Условный отказ
    loss_reasons: {Дорого: high_price}
  b24_wholesale:
    loss_reason_field: UF_CRM_LOSS_REASON
    loss_reason_stages: true
    stages: {"Общая / Новая заявка": new}
    loss_reasons: {Нет бюджета: no_budget, "Проиграли: цена": high_price}
  erp:
    stages: {Первичный контакт: new, Презентация: proposal}
    loss_reasons: {Нет бюджета: no_budget}
"""

T0 = 1_709_276_400  # 2024-03-01T07:00:00Z
HOUR = 3600
U1 = "00000000-0000-0000-0000-0000000000u1"  # 1C user of Сидоров (his 1C e-mail is a private one)
EMPTY_REF = "00000000-0000-0000-0000-000000000000"
D1, D2, D3 = (
    "ac1f6b8e-4c8b-11e9-80d5-0050569f2e9f",
    "bd72d910-55bc-11d9-848a-00112f43529a",
    "c0ffee00-0000-4000-8000-000000000003",
)


def _amo_event(eid: str, lead: int, at: int, before: int, after: int) -> dict[str, Any]:
    return {"id": eid, "type": "lead_status_changed", "entity_id": lead, "entity_type": "lead", "created_by": 501,
            "created_at": at, "value_before": [{"lead_status": {"id": before, "pipeline_id": 100}}],
            "value_after": [{"lead_status": {"id": after, "pipeline_id": 100}}]}  # fmt: skip


def land_amocrm(conn: psycopg.Connection) -> None:
    def a(entity: str, records: list[dict[str, Any]], **kw: Any) -> None:
        land(conn, "amocrm", "amo_retail", entity, records, **kw)

    a("users", [{"id": 501, "name": "Иванов Иван", "email": "Ivanov@Corp.RU", "rights": {"is_active": True}}])
    statuses = [(1001, "Новая", 10, 1), (1002, "Контакт", 20, 0), (1003, "Условный отказ", 30, 0),
                (142, "Успешно реализовано", 10000, 0), (143, "Закрыто и не реализовано", 11000, 0)]  # fmt: skip
    a("pipelines", [{"id": 100, "name": "Розница", "sort": 1, "is_main": True, "_embedded": {"statuses": [
        {"id": s, "name": n, "sort": o, "type": t, "pipeline_id": 100} for s, n, o, t in statuses]}}])  # fmt: skip
    a("loss_reasons", [{"id": 9001, "name": "Дорого", "sort": 100000}])
    a("companies", [{"id": 7001, "name": "ООО Ромашка", "custom_fields_values": [
        {"field_id": 3, "field_name": "ИНН", "field_code": None, "field_type": "text",
         "values": [{"value": "ИНН 7707083893"}]}]}])  # fmt: skip
    lead = {"price": 150000, "responsible_user_id": 501, "pipeline_id": 100, "created_by": 501,
            "is_deleted": False, "custom_fields_values": None}  # fmt: skip
    a("leads", [
        {**lead, "id": 11, "name": "Поставка мебели", "status_id": 142, "loss_reason_id": None,
         "created_at": T0, "updated_at": T0 + 36 * HOUR, "closed_at": T0 + 36 * HOUR,
         "_embedded": {"companies": [{"id": 7001}], "contacts": [{"id": 5, "is_main": True}], "loss_reason": []}},
        {**lead, "id": 12, "name": "Поставка стеллажей", "status_id": 143, "loss_reason_id": 9001,
         "created_at": T0, "updated_at": T0 + 5 * HOUR, "closed_at": T0 + 5 * HOUR,
         "_embedded": {"companies": [], "loss_reason": [{"id": 9001, "name": "Дорого"}]}},
    ])  # fmt: skip
    a("leads", [{"id": 13, "updated_at": T0, "is_deleted": True}], deleted=True)
    a("events", [
        _amo_event("01a", 11, T0 + HOUR, 1001, 1002), _amo_event("01b", 11, T0 + 36 * HOUR, 1002, 142),
        _amo_event("01c", 12, T0 + HOUR, 1001, 1002), _amo_event("01d", 12, T0 + 3 * HOUR, 1002, 1003),
        _amo_event("01e", 12, T0 + 5 * HOUR, 1003, 143), _amo_event("01f", 13, T0 + HOUR, 1001, 1002),
    ])  # fmt: skip
    a("notes", [
        {"id": 1, "entity_id": 12, "note_type": "common", "created_at": T0 + 2 * HOUR, "params": {"text": "первый"}},
        {"id": 2, "entity_id": 12, "note_type": "common", "created_at": T0 + 5 * HOUR,
         "params": {"text": "Нашли дешевле на 15% у конкурента"}},
    ])  # fmt: skip


def land_bitrix24(conn: psycopg.Connection) -> None:
    def b(entity: str, records: list[dict[str, Any]], key: str = "ID") -> None:
        land(conn, "bitrix24", "b24_wholesale", entity, records, key=key)

    b("users", [{"ID": "7", "ACTIVE": True, "NAME": "Иван", "LAST_NAME": "Иванов", "SECOND_NAME": "",
                 "EMAIL": "ivanov@corp.ru"}])  # fmt: skip
    b("categories", [{"id": 0, "name": "Общая", "sort": 100, "isDefault": "Y"}], key="id")
    stages = [("NEW", "Новая заявка", None), ("PREPARATION", "Подготовка", None), ("WON", "Сделка успешна", "S"),
              ("LOSE", "Сделка провалена", "F"), ("LOSE_PRICE", "Проиграли: цена", "F")]  # fmt: skip
    b("statuses", [{"ID": str(i), "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": s, "NAME": n, "SORT": str(i * 10),
                    "SEMANTICS": sem} for i, (s, n, sem) in enumerate(stages, start=1)])  # fmt: skip
    land(conn, "bitrix24", "b24_wholesale", "deal_fields", [
        ("TITLE", {"type": "string", "title": "Название"}),
        ("UF_CRM_LOSS_REASON", {"type": "enumeration", "items": [{"ID": "79", "VALUE": "Нет бюджета"}],
                                "listLabel": "Причина проигрыша"}),
    ], key=None)  # fmt: skip
    b("companies", [{"ID": "3", "TITLE": "Ромашка", "DATE_CREATE": "2024-01-10T12:00:00+03:00"}])
    b(
        "requisites",
        [{"ID": "31", "ENTITY_TYPE_ID": "4", "ENTITY_ID": "3", "RQ_INN": "77 0708 3893", "SORT": "500"}],
    )
    deal = {"CATEGORY_ID": "0", "ASSIGNED_BY_ID": "7", "CREATED_BY_ID": "7", "CLOSED": "Y",
            "STAGE_SEMANTIC_ID": "F", "DATE_CREATE": "2024-03-01T10:00:00+03:00"}  # fmt: skip
    b("deals", [
        {**deal, "ID": "21", "TITLE": "Опт: кабель", "STAGE_ID": "LOSE", "CURRENCY_ID": "USD",
         "OPPORTUNITY": "1000.50", "COMPANY_ID": "3", "COMMENTS": "Бюджет на квартал исчерпан, вернуться в июне",
         "CLOSEDATE": "2024-03-02T00:00:00+03:00", "UF_CRM_LOSS_REASON": "79"},
        {**deal, "ID": "22", "TITLE": "Тендер", "STAGE_ID": "LOSE_PRICE", "CURRENCY_ID": "RUB",
         "OPPORTUNITY": "20000.00", "COMPANY_ID": "0", "COMMENTS": None, "UF_CRM_LOSS_REASON": None},
    ])  # fmt: skip
    history = [(1, 1, "21", "2024-03-01T10:00:00+03:00", "NEW", "P"), (2, 2, "21", "2024-03-01T14:00:00+03:00",
               "PREPARATION", "P"), (3, 3, "21", "2024-03-02T10:00:00+03:00", "LOSE", "F"),
               (4, 1, "22", "2024-03-01T10:00:00+03:00", "NEW", "P"),
               (5, 3, "22", "2024-03-01T10:20:00+03:00", "LOSE_PRICE", "F")]  # fmt: skip
    b("stage_history", [{"ID": i, "TYPE_ID": t, "OWNER_ID": int(o), "CREATED_TIME": at, "CATEGORY_ID": 0,
                         "STAGE_ID": s, "STAGE_SEMANTIC_ID": sem} for i, t, o, at, s, sem in history])  # fmt: skip
    b("timeline_comments", [
        {"ID": "901", "ENTITY_ID": "22", "ENTITY_TYPE": "deal", "CREATED": "2024-03-01T10:10:00+03:00",
         "COMMENT": "Готовим заявку", "AUTHOR_ID": "7"},
        {"ID": "902", "ENTITY_ID": "22", "ENTITY_TYPE": "deal", "CREATED": "2024-03-01T10:19:00+03:00",
         "COMMENT": "Победитель дал цену на 12% ниже", "AUTHOR_ID": "7"},
    ])  # fmt: skip


def land_onec(conn: psycopg.Connection) -> None:
    def c(entity: str, records: list[dict[str, Any]], key: Any = "Ref_Key") -> None:
        land(conn, "onec", "erp", entity, records, key=key)

    head = {"DataVersion": "AAAAAQAAAAA=", "DeletionMark": False, "Parent_Key": EMPTY_REF, "IsFolder": False}
    c("users", [{**head, "Ref_Key": U1, "Code": "1", "Description": "Сидоров Пётр", "Недействителен": False,
                 "КонтактнаяИнформация": [{"Тип": "АдресЭлектроннойПочты", "АдресЭП": "p.sidorov@mail.ru"}]}])  # fmt: skip
    c("deal_kinds", [{**head, "Ref_Key": "k1", "Description": "Типовая продажа", "ТипСделки": "ТиповаяПродажа",
                      "Этапы": [{"LineNumber": "1", "Этап_Key": "s1"}, {"LineNumber": "2", "Этап_Key": "s2"}]}])  # fmt: skip
    c("stages", [{**head, "Ref_Key": "s1", "Description": "Первичный контакт", "РеквизитДопУпорядочивания": 1},
                 {**head, "Ref_Key": "s2", "Description": "Презентация", "РеквизитДопУпорядочивания": 2}])  # fmt: skip
    c("currencies", [{**head, "Ref_Key": "rub", "Code": "643", "Description": "руб."},
                     {**head, "Ref_Key": "usd", "Code": "840", "Description": "USD"}])  # fmt: skip
    rates = [("rub", "2024-01-01T00:00:00", 1), ("usd", "2024-02-28T00:00:00", 90),
             ("usd", "2024-03-01T00:00:00", 91.5), ("usd", "2024-03-05T00:00:00", 100)]  # fmt: skip
    c("exchange_rates", [{"Period": p, "Валюта_Key": k, "Курс": r, "Кратность": 1} for k, p, r in rates],
      key=lambda r: f"{r['Валюта_Key']}|{r['Period']}")  # fmt: skip
    c("partners", [{**head, "Ref_Key": "p1", "Description": "Ромашка АО"},
                   {**head, "Ref_Key": "p2", "Description": "Лютик"}])  # fmt: skip
    c("counterparties", [{**head, "Ref_Key": "c1", "Description": "АО Ромашка", "ИНН": "7707083893", "Партнер_Key": "p1"},
                         {**head, "Ref_Key": "c2", "Description": "ООО Лютик", "ИНН": "7707083894",
                          "Партнер_Key": "p2"}])  # fmt: skip
    c("loss_reasons", [{**head, "Ref_Key": "r1", "Description": "Нет бюджета"}])
    deal = {
        **head,
        "ВидСделки_Key": "k1",
        "ВалютаПервичногоСпроса_Key": "usd",
        "ПотенциальнаяСуммаПродажи": 5000,
    }
    c("deals", [
        {**deal, "Ref_Key": D1, "Code": "00-00000001", "Description": "Поставка станков", "Статус": "Проиграна",
         "Закрыта": True, "Партнер_Key": "p1", "Ответственный_Key": U1, "ПричинаПроигрышаСделки_Key": "r1",
         "ДатаНачала": "2024-03-01T12:00:00", "ДатаОкончания": "2024-03-02T12:00:00",
         "Комментарий": "Перенесли закупку на следующий год"},
        {**deal, "Ref_Key": D2, "Code": "00-00000002", "Description": "Поставка запчастей", "Статус": "ВРаботе",
         "Закрыта": False, "Партнер_Key": "p2", "Ответственный_Key": EMPTY_REF,
         "ПричинаПроигрышаСделки_Key": EMPTY_REF, "ДатаНачала": "2024-03-03T09:00:00",
         "ДатаОкончания": "0001-01-01T00:00:00", "Комментарий": ""},
        {**deal, "Ref_Key": D3, "DeletionMark": True, "Code": "00-00000003", "Description": "Удалена",
         "Статус": "ВРаботе", "Закрыта": False, "Партнер_Key": "p1", "Ответственный_Key": U1,
         "ДатаНачала": "2024-03-03T09:00:00", "ДатаОкончания": "0001-01-01T00:00:00"},
    ])  # fmt: skip
    stats = [(D1, "s1", "2024-03-01T12:00:00", "2024-03-01T18:00:00"), (D1, "s2", "2024-03-01T18:00:00",
             "2024-03-02T12:00:00"), (D2, "s1", "2024-03-03T09:00:00", "0001-01-01T00:00:00")]  # fmt: skip
    c("deal_stage_stats", [{"Сделка_Key": d, "ЭтапПроцесса_Key": s, "ДатаНачала": b, "ДатаОкончания": e,
                            "Продолжительность": 0, "Потенциал": 5000, "Результат": "ВРаботе",
                            "Ответственный_Key": U1} for d, s, b, e in stats],
      key=lambda r: f"{r['Сделка_Key']}|{r['ЭтапПроцесса_Key']}")  # fmt: skip


@pytest.fixture(scope="module")
def deals(warehouse: Any, dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    with clean_warehouse(warehouse) as conn:
        write_config(conn, Path(tmp_path_factory.mktemp("config")), SOURCES, FUNNEL)
        land_amocrm(conn)
        land_bitrix24(conn)
        land_onec(conn)
        dbt("run", "--full-refresh", *DEAL_MODELS)
        return {r["deal_key"]: r for r in rows(conn, "select * from marts.fct_deals")}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_deleted_records_are_dropped(deals: dict[str, dict[str, Any]]) -> None:
    assert sorted(deals) == sorted(["amo_retail:11", "amo_retail:12", "b24_wholesale:21", "b24_wholesale:22",
                                    f"erp:{D1}", f"erp:{D2}"])  # fmt: skip


def test_amocrm(deals: dict[str, dict[str, Any]]) -> None:
    won, lost = deals["amo_retail:11"], deals["amo_retail:12"]
    assert (won["status"], won["canonical_stage"], won["furthest_canonical_stage"]) == ("won", "paid", "paid")
    assert won["created_at"] == at("2024-03-01T07:00:00") and won["cycle_days"] == Decimal("1.5")
    assert won["crm_url"] == "https://retail.amocrm.ru/leads/detail/11"
    assert (won["amount"], won["currency"], won["amount_base"]) == (150000, "RUB", 150000)
    assert (lost["status"], lost["lost_at_stage"], lost["lost_at_canonical_stage"]) == (
        "lost",
        "Контакт",
        "contact",
    )
    assert lost["passed_conditional_refusal"] and not lost["skipped_conditional_refusal"]
    assert (lost["loss_reason_raw"], lost["loss_reason_code"]) == ("Дорого", "high_price")
    assert lost["loss_comment"] == "Нашли дешевле на 15% у конкурента"
    assert lost["customer_key"] is None


def test_bitrix24(deals: dict[str, dict[str, Any]]) -> None:
    usd, by_stage = deals["b24_wholesale:21"], deals["b24_wholesale:22"]
    assert usd["created_at"] == at("2024-03-01T07:00:00") and usd["closed_at"] == at("2024-03-02T07:00:00")
    # the rate on or before the close: 91.5 (2024-03-01), not 100 (2024-03-05)
    assert (usd["amount"], usd["currency"], usd["amount_base"]) == (
        Decimal("1000.50"),
        "USD",
        Decimal("91545.75"),
    )
    assert (usd["loss_reason_raw"], usd["loss_reason_code"]) == ("Нет бюджета", "no_budget")
    assert usd["loss_comment"] == "Бюджет на квартал исчерпан, вернуться в июне"
    assert (usd["lost_at_stage"], usd["lost_at_canonical_stage"]) == ("Подготовка", "unmapped")
    assert usd["crm_url"] == "https://wholesale.bitrix24.ru/crm/deal/details/21/"
    assert (by_stage["loss_reason_raw"], by_stage["loss_reason_code"]) == ("Проиграли: цена", "high_price")
    assert by_stage["loss_comment"] == "Победитель дал цену на 12% ниже"
    assert (by_stage["lost_at_stage"], by_stage["lost_at_canonical_stage"]) == ("Новая заявка", "new")
    assert by_stage["cycle_days"] == Decimal("0.0139") and by_stage["customer_key"] is None


def test_onec(deals: dict[str, dict[str, Any]]) -> None:
    lost, open_ = deals[f"erp:{D1}"], deals[f"erp:{D2}"]
    assert lost["created_at"] == at("2024-03-01T09:00:00") and lost["closed_at"] == at("2024-03-02T09:00:00")
    assert (lost["status"], lost["stage_name"], lost["lost_at_stage"]) == (
        "lost",
        "Презентация",
        "Презентация",
    )
    assert (lost["loss_reason_raw"], lost["loss_reason_code"]) == ("Нет бюджета", "no_budget")
    assert (lost["amount"], lost["currency"], lost["amount_base"]) == (5000, "USD", Decimal("457500.00"))
    assert lost["crm_url"] == (
        "http://erp.local/trade/#e1cib/data/Справочник.СделкиСКлиентами?ref=80d50050569f2e9f11e94c8bac1f6b8e"
    )
    assert (open_["status"], open_["closed_at"], open_["cycle_days"]) == ("open", None, None)
    assert open_["stage_name"] == "Первичный контакт" and open_["loss_reason_raw"] is None
    assert open_["customer_key"] == "erp:p2", "an impossible INN is no identity"


def test_one_customer_and_one_manager_across_systems(
    deals: dict[str, dict[str, Any]], warehouse: Any
) -> None:
    assert {deals[k]["customer_key"] for k in ("amo_retail:11", "b24_wholesale:21", f"erp:{D1}")} == {
        "inn:7707083893"
    }
    assert (
        deals["amo_retail:11"]["manager_key"] == deals["b24_wholesale:21"]["manager_key"] == "ivanov@corp.ru"
    )
    assert deals[f"erp:{D1}"]["manager_key"] == "sidorov@corp.ru" == deals[f"erp:{D2}"]["manager_key"]
    assert deals[f"erp:{D1}"]["manager_name"] == "Сидоров Пётр"
    with psycopg.connect(warehouse.conninfo()) as conn:
        customer = rows(conn, "select * from marts.dim_customers where customer_key = 'inn:7707083893'")
        assert len(customer) == 1 and customer[0]["source_record_count"] == 3 and customer[0]["deals"] == 3
        managers = {r["manager_key"]: r for r in rows(conn, "select * from marts.dim_managers")}
        assert set(managers) == {"ivanov@corp.ru", "sidorov@corp.ru"}
        assert managers["ivanov@corp.ru"]["source_user_keys"] == "amo_retail:501, b24_wholesale:7"
        unmapped = {
            (r["source_name"], r["source_value"])
            for r in rows(conn, "select * from marts.dq_unmapped_values")
        }
        assert unmapped == {("b24_wholesale", "Подготовка")}
