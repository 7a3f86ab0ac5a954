"""Small mart tables with hand-chosen rows, in a database of their own on the session's
warehouse (so that a dbt build of the real marts in ``dwh`` never meets them).

The loss marts are aggregated from ``fct_lost_deals``/``fct_deals`` by SQL, so the numbers
agree across tables as they do in the real marts; the funnel conversion holds the worked
example of the head of sales' weekly review: against targets of 100/80/80/95 %, Ivanov
converts 80/70/86/96 % and Sidorov 96/90/70/80 %.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from dwh.bootstrap import bootstrap
from dwh.warehouse import Target

DATABASE = "reports_test"
TZ = ZoneInfo("Europe/Moscow")
AS_OF = date(2025, 3, 12)  # a Wednesday: the report's week is 2025-W10, 3 to 9 March
PHONE = "+7 (916) 123-45-67"
CLIENT_EMAIL = "ivan.client@romashka.ru"

FUNNEL_YAML = """
timezone: Europe/Moscow
base_currency: RUB
stages:
  - {code: new, name: Новая заявка, target_conversion: 1.0}
  - {code: contact, name: Первичный контакт, target_conversion: 0.8}
  - {code: proposal, name: Презентация, target_conversion: 0.8}
  - {code: contract, name: Договор, target_conversion: 0.95}
  - {code: paid, name: Оплачено}
loss_reasons:
  - {code: no_budget, name: Нет бюджета, reactivate_after_days: 60}
  - {code: other_supplier, name: Есть другой поставщик}
  - {code: high_price, name: Высокая цена}
  - {code: other, name: Другое}
"""

ALERTS_YAML = """
channels:
  email:
    smtp_host: 127.0.0.1
    smtp_port: {smtp_port}
    security: none
    sender: dwh@example.ru
  telegram:
    bot_token: ${{TELEGRAM_BOT_TOKEN}}
    api_base_url: {telegram_url}
recipients:
  head_of_sales:
    email: [rop@example.ru, deputy@example.ru]
    telegram_chat_ids: ["-1001234567890"]
    receives: [weekly_funnel_report]
  data_engineers:
    email: [data@example.ru]
    receives: [run_failures, failed_checks]
schedule:
  weekly_funnel_report: "0 9 * * 1"
"""


def write_config(folder: Path, smtp_port: int = 1, telegram_url: str = "http://127.0.0.1:1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "funnel.yaml").write_text(FUNNEL_YAML, encoding="utf-8")
    (folder / "alerts.yaml").write_text(
        ALERTS_YAML.format(smtp_port=smtp_port, telegram_url=telegram_url), encoding="utf-8"
    )
    return folder


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


IVANOV, SIDOROV = ("m:ivanov", "Иванов Иван"), ("m:sidorov", "Сидоров Пётр")

# deal id, manager, closed on, stage lost at, reason code, reason name, amount, comment, crm url
LOST = [
    (1, IVANOV, date(2025, 3, 3), "contact", "no_budget", "Нет бюджета", 120_000, "Бюджет на следующий квартал",
     "http://127.0.0.1:18081/leads/detail/1"),
    (2, IVANOV, date(2025, 3, 5), "new", "high_price", "Высокая цена", 45_500.5,
     f"Клиент просил перезвонить на {PHONE} или написать на {CLIENT_EMAIL}", "http://127.0.0.1:18081/leads/detail/2"),
    (3, SIDOROV, date(2025, 3, 7), "proposal", "other_supplier", "Есть другой поставщик", 310_000, None,
     "http://127.0.0.1:18082/crm/deal/details/3/"),
    (4, SIDOROV, date(2025, 3, 9), "contract", "high_price", "Высокая цена", 990_000, "Дорого",
     "javascript:alert(1)"),
    (5, IVANOV, date(2025, 2, 20), "contact", "no_budget", "Нет бюджета", 80_000, "Нет денег до лета",
     "http://127.0.0.1:18081/leads/detail/5"),
    (6, SIDOROV, date(2025, 2, 12), "proposal", "other", "Другое", 15_000, "Передумали",
     "http://127.0.0.1:18082/crm/deal/details/6/"),
    (7, IVANOV, date(2025, 2, 4), "new", "other_supplier", "Есть другой поставщик", 60_000, "Работают с Альфой",
     "http://127.0.0.1:18081/leads/detail/7"),
    (8, SIDOROV, date(2025, 1, 15), "contact", "high_price", "Высокая цена", 230_000, "Цена выше на 20%",
     "http://127.0.0.1:18082/crm/deal/details/8/"),
    (9, IVANOV, date(2024, 11, 5), "proposal", "no_budget", "Нет бюджета", 500_000, "Отложили закупку",
     "http://127.0.0.1:18081/leads/detail/9"),
    (10, SIDOROV, date(2024, 1, 10), "contact", "high_price", "Высокая цена", 777_000, "Старая сделка",
     "http://127.0.0.1:18082/crm/deal/details/10/"),
]  # fmt: skip
WON = [(21, IVANOV, date(2025, 3, 4), 400_000), (22, SIDOROV, date(2025, 2, 10), 250_000),
       (23, SIDOROV, date(2025, 1, 20), 125_000)]  # fmt: skip

# manager -> stage -> (reached, moved on) per week of creation (weeks add up)
WORKED_EXAMPLE = {
    IVANOV: {"new": [(60, 48), (40, 32)], "contact": [(48, 34), (32, 22)], "proposal": [(34, 29), (22, 19)],
             "contract": [(29, 28), (19, 18)]},
    SIDOROV: {"new": [(50, 48), (50, 48)], "contact": [(48, 43), (48, 43)], "proposal": [(43, 30), (43, 30)],
              "contract": [(30, 24), (30, 24)]},
}  # fmt: skip
TARGETS = {"new": 1.0, "contact": 0.8, "proposal": 0.8, "contract": 0.95}
WEEKS = (date(2025, 2, 24), date(2025, 3, 3))  # 2025-W09 and W10: inside the conversion window
OLD_WEEK = date(2024, 9, 30)  # inside the twelve months, outside the twelve weeks


def conversion_rows() -> list[tuple]:
    rows = []
    for (key, name), stages in WORKED_EXAMPLE.items():
        for stage, weeks in stages.items():
            for week, (reached, moved) in zip(WEEKS, weeks, strict=True):
                rate = moved / reached
                rows.append(
                    (week, key, name, stage, reached, moved, rate, TARGETS[stage], rate - TARGETS[stage])
                )
        for week, (_, paid) in zip(WEEKS, stages["contract"], strict=True):
            rows.append((week, key, name, "paid", paid, None, None, None, None))  # the last stage has no next
        rows.append((OLD_WEEK, key, name, "new", 10, 1, 0.1, 1.0, -0.9))
    return rows


def totals(manager: tuple[str, str], stage: str) -> tuple[int, int]:
    weeks = WORKED_EXAMPLE[manager][stage]
    return sum(r for r, _ in weeks), sum(m for _, m in weeks)


SCHEMA_SQL = """
create table marts.fct_deals (
    deal_key text primary key, source_name text, source_system text, deal_id text, deal_name text,
    pipeline_name text, stage_name text, canonical_stage text, status text, manager_key text, manager_name text,
    customer_key text, customer_name text, amount numeric(18,2), currency text, amount_base numeric(18,2),
    created_at timestamptz, closed_at timestamptz, cycle_days numeric, loss_reason_code text,
    loss_reason_name text, loss_reason_raw text, loss_comment text, lost_at_stage text,
    lost_at_canonical_stage text, passed_conditional_refusal boolean, crm_url text
);
create table marts.fct_lost_deals as
select deal_key, source_name, deal_name, manager_key, manager_name, closed_at, lost_at_stage,
       lost_at_canonical_stage, loss_reason_code, loss_reason_name, loss_reason_raw, loss_comment, amount_base,
       cycle_days, customer_key, customer_name, 0 as customer_won_deals_before,
       30.5::numeric as customer_relationship_days, passed_conditional_refusal, crm_url
from marts.fct_deals where false;
"""

AGGREGATES_SQL = """
insert into marts.fct_lost_deals
select deal_key, source_name, deal_name, manager_key, manager_name, closed_at, lost_at_stage,
       lost_at_canonical_stage, loss_reason_code, loss_reason_name, loss_reason_raw, loss_comment, amount_base,
       cycle_days, customer_key, customer_name, (deal_id::int % 3), 30.5 + deal_id::int, passed_conditional_refusal,
       crm_url
from marts.fct_deals where status = 'lost';

create table marts.rpt_loss_by_stage as
with lost as (
    select date_trunc('month', closed_at at time zone 'Europe/Moscow')::date as month, lost_at_canonical_stage,
           amount_base
    from marts.fct_lost_deals
)
select month, lost_at_canonical_stage as canonical_stage, count(*) as lost_deals,
       count(*)::numeric / sum(count(*)) over (partition by month) as lost_deals_share,
       sum(amount_base) as lost_amount_base,
       sum(amount_base) / sum(sum(amount_base)) over (partition by month) as lost_amount_share
from lost group by 1, 2;

create table marts.rpt_loss_by_reason as
with lost as (
    select date_trunc('month', closed_at at time zone 'Europe/Moscow')::date as month, loss_reason_code,
           loss_reason_name, amount_base
    from marts.fct_lost_deals
)
select month, loss_reason_code, loss_reason_name, count(*) as lost_deals,
       count(*)::numeric / sum(count(*)) over (partition by month) as lost_deals_share,
       sum(amount_base) as lost_amount_base,
       sum(amount_base) / sum(sum(amount_base)) over (partition by month) as lost_amount_share
from lost group by 1, 2, 3;

create table marts.rpt_loss_by_manager as
with closed as (
    select date_trunc('month', closed_at at time zone 'Europe/Moscow')::date as month, manager_key, manager_name,
           status, amount_base
    from marts.fct_deals where status in ('won', 'lost')
)
select month, manager_key, manager_name, count(*) as closed_deals,
       count(*) filter (where status = 'lost') as lost_deals,
       count(*) filter (where status = 'lost')::numeric / count(*) as loss_rate,
       coalesce(sum(amount_base) filter (where status = 'lost'), 0) as lost_amount_base,
       count(*) filter (where status = 'lost')::numeric
           / nullif(sum(count(*) filter (where status = 'lost')) over (partition by month), 0) as share_of_all_losses
from closed group by 1, 2, 3;

create table marts.rpt_funnel_conversion (
    week_start date, manager_key text, manager_name text, canonical_stage text, reached_stage integer,
    reached_next_stage integer, conversion_rate numeric, target_rate numeric, gap numeric
);
create table marts.rpt_coaching_pairs (
    manager_key text, manager_name text, canonical_stage text, conversion_rate numeric, target_rate numeric,
    coach_manager_key text, coach_manager_name text, coach_conversion_rate numeric
);
create table marts.dq_lost_deal_issues (
    deal_key text, issue_type text, manager_name text, crm_url text, first_detected_at timestamptz,
    resolved_at timestamptz
);
create table marts.rpt_reactivation_due (
    deal_key text, deal_name text, customer_name text, loss_reason_name text, due_on date, manager_name text,
    amount_base numeric(18,2), crm_url text
);
"""


def _fill(conn: psycopg.Connection) -> None:
    conn.execute(SCHEMA_SQL)
    deals = []
    for deal_id, (mkey, mname), closed, stage, code, reason, amount, comment, url in LOST:
        name = f"Поставка №{deal_id}" if deal_id != 4 else '=HYPERLINK("http://evil.example","нажми")'
        deals.append((f"amo_retail:{deal_id}", "amo_retail", "amocrm", str(deal_id), name, "Продажи", "Закрыто",
                      None, "lost", mkey, mname, f"inn:77{deal_id:08d}", f"ООО «Клиент {deal_id}»", amount, "RUB",
                      amount, at(closed) - timedelta(days=10 + deal_id), at(closed), 10 + deal_id, code, reason,
                      f"{reason} (CRM)", comment, f"Этап {stage}", stage, deal_id % 2 == 0, url))  # fmt: skip
    for deal_id, (mkey, mname), closed, amount in WON:
        deals.append((f"b24_wholesale:{deal_id}", "b24_wholesale", "bitrix24", str(deal_id), f"Сделка {deal_id}",
                      "Опт", "Успешно", "paid", "won", mkey, mname, None, f"ООО «Победа {deal_id}»", amount, "RUB",
                      amount, at(closed) - timedelta(days=20), at(closed), 20, None, None, None, None, None, None,
                      False, f"http://127.0.0.1:18082/crm/deal/details/{deal_id}/"))  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany("insert into marts.fct_deals values (" + ", ".join(["%s"] * 27) + ")", deals)
        conn.execute(AGGREGATES_SQL)
        cur.executemany("insert into marts.rpt_funnel_conversion values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        conversion_rows())  # fmt: skip
        pairs = []
        for learner, coach in ((IVANOV, SIDOROV), (SIDOROV, IVANOV)):
            for stage, target in TARGETS.items():
                reached, moved = totals(learner, stage)
                c_reached, c_moved = totals(coach, stage)
                if moved / reached < target and c_moved / c_reached > moved / reached:
                    pairs.append((learner[0], learner[1], stage, moved / reached, target, coach[0], coach[1],
                                  c_moved / c_reached))  # fmt: skip
        cur.executemany("insert into marts.rpt_coaching_pairs values (%s, %s, %s, %s, %s, %s, %s, %s)", pairs)
        cur.executemany("insert into marts.dq_lost_deal_issues values (%s, %s, %s, %s, %s, %s)", [
            ("amo_retail:3", "missing_comment", SIDOROV[1], "http://127.0.0.1:18082/crm/deal/details/3/",
             at(date(2025, 3, 8)), None),
            ("amo_retail:2", "lost_too_fast", IVANOV[1], "http://127.0.0.1:18081/leads/detail/2", at(date(2025, 3, 6)),
             None),
            ("amo_retail:7", "missing_reason", IVANOV[1], "http://127.0.0.1:18081/leads/detail/7", at(date(2025, 2, 5)),
             at(date(2025, 2, 6))),
        ])  # fmt: skip
        cur.executemany("insert into marts.rpt_reactivation_due values (%s, %s, %s, %s, %s, %s, %s, %s)", [
            ("amo_retail:5", "Поставка №5", "ООО «Клиент 5»", "Нет бюджета", date(2025, 4, 21), IVANOV[1], 80_000,
             "http://127.0.0.1:18081/leads/detail/5"),
            ("amo_retail:1", "Поставка №1", "ООО «Клиент 1»", "Нет бюджета", date(2025, 5, 2), IVANOV[1], 120_000,
             "http://127.0.0.1:18081/leads/detail/1"),
        ])  # fmt: skip
    conn.execute("create table raw_amocrm.leads_probe (id text, record jsonb)")
    conn.execute("""insert into raw_amocrm.leads_probe values ('1', '{"phone": "+79161234567"}')""")


def report_warehouse(warehouse: Target) -> Target:
    """The session server's ``reports_test`` database, bootstrapped (schemas, BI role) and
    holding the marts above. Idempotent."""
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
    target = dataclasses.replace(warehouse, dbname=DATABASE)
    bootstrap(target)
    with psycopg.connect(target.conninfo()) as conn:
        if not conn.execute("select to_regclass('marts.rpt_coaching_pairs')").fetchone()[0]:
            _fill(conn)
    bootstrap(target)  # the BI role's grants on the tables just made
    return target
