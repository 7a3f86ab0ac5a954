"""domain.md's worked example, from raw deals: Ivanov and Sidorov, targets 100/80/80/95.
Five hundred amoCRM leads are built to the example's rates (each moved through the pipeline
by status events up to the stage it reached, then won, lost or left open), landed as the API
serves them, and built: rpt_funnel_conversion shows the rates and gaps, rpt_coaching_pairs
who should learn what from whom."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.dbt.config_files import write_config
from tests.dbt.conftest import Dbt, clean_warehouse
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
"""

FUNNEL = """
stages:
  - {code: new, name: Список, target_conversion: 1.00}
  - {code: contact, name: Первый контакт, target_conversion: 0.80}
  - {code: presentation, name: Презентация, target_conversion: 0.80}
  - {code: contract, name: Договор, target_conversion: 0.95}
  - {code: paid, name: Оплата}
loss_reasons:
  - {code: other, name: Другое}
sources:
  amo_retail:
    stages: {Новый: new, Первый контакт: contact, Презентация: presentation, Договор: contract}
"""

# deals reaching each stage: new, contact, presentation, contract, paid
REACHED = {"ivanov": [250, 200, 140, 119, 114], "sidorov": [250, 240, 216, 151, 121]}
USERS = {"ivanov": (1, "Иванов Иван", "ivanov@corp.ru"), "sidorov": (2, "Сидоров Сидор", "sidorov@corp.ru")}
STATUSES = [(11, "Новый"), (12, "Первый контакт"), (13, "Презентация"), (14, "Договор")]
MONDAY = 1_725_253_200  # 2024-09-02T05:00:00Z, 08:00 in Moscow
DAY = 86_400


def leads_and_events() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    leads, events = [], []
    lead_id = 1000
    for manager, reached in REACHED.items():
        user_id = USERS[manager][0]
        for furthest in range(1, 6):
            count = reached[furthest - 1] - (reached[furthest] if furthest < 5 else 0)
            for n in range(count):
                lead_id += 1
                created = MONDAY + (n % 2) * 7 * DAY + n * 60  # two weeks
                path = [s for s, _ in STATUSES[: min(furthest, 4)]]
                final = 142 if furthest == 5 else (143 if n % 3 else None)  # some are left open
                path += [final] if final else []
                for i, (before, after) in enumerate(zip(path, path[1:], strict=False), start=1):
                    events.append({"id": f"e{lead_id}-{i}", "type": "lead_status_changed", "entity_id": lead_id,
                                   "entity_type": "lead", "created_by": user_id, "created_at": created + i * 3600,
                                   "value_before": [{"lead_status": {"id": before, "pipeline_id": 10}}],
                                   "value_after": [{"lead_status": {"id": after, "pipeline_id": 10}}]})  # fmt: skip
                closed = created + (len(path) - 1) * 3600 if final else None
                leads.append({"id": lead_id, "name": f"Сделка {lead_id}", "price": 10000, "pipeline_id": 10,
                              "status_id": path[-1], "responsible_user_id": user_id, "created_at": created,
                              "updated_at": closed or created, "closed_at": closed, "is_deleted": False,
                              "_embedded": {"companies": [], "loss_reason": []}})  # fmt: skip
    return leads, events


@pytest.fixture(scope="module")
def built(warehouse: Any, dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[psycopg.Connection]:
    with clean_warehouse(warehouse) as conn:
        write_config(conn, Path(tmp_path_factory.mktemp("config")), SOURCES, FUNNEL)
        land(conn, "amocrm", "amo_retail", "users", [{"id": uid, "name": name, "email": email}
                                                     for uid, name, email in USERS.values()])  # fmt: skip
        statuses = [*STATUSES, (142, "Успешно реализовано"), (143, "Закрыто и не реализовано")]
        land(conn, "amocrm", "amo_retail", "pipelines", [{"id": 10, "name": "Продажи", "_embedded": {
            "statuses": [{"id": s, "name": n, "sort": i, "pipeline_id": 10} for i, (s, n) in enumerate(statuses)]}}])  # fmt: skip
        leads, events = leads_and_events()
        land(conn, "amocrm", "amo_retail", "leads", leads)
        land(conn, "amocrm", "amo_retail", "events", events)
        dbt("run", "--full-refresh", "--select", "+rpt_coaching_pairs")
        yield conn


def test_weekly_rows_add_up_to_the_example_with_its_gaps(built: psycopg.Connection) -> None:
    weekly = rows(built, "select * from marts.rpt_funnel_conversion")
    assert len({r["week_start"] for r in weekly}) == 2, "two weeks of deals"
    totals: dict[tuple[str, str], list[Any]] = {}
    for r in weekly:
        cell = totals.setdefault((r["manager_name"], r["canonical_stage"]), [0, 0, r["target_rate"]])
        cell[0] += r["reached_stage"]
        cell[1] += r["reached_next_stage"] or 0
    rates = {k: (round(Decimal(n) / d, 2), t) for k, (d, n, t) in totals.items() if k[1] != "paid"}
    assert rates == {
        ("Иванов Иван", "new"): (Decimal("0.80"), Decimal("1")),
        ("Иванов Иван", "contact"): (Decimal("0.70"), Decimal("0.8")),
        ("Иванов Иван", "presentation"): (Decimal("0.85"), Decimal("0.8")),
        ("Иванов Иван", "contract"): (Decimal("0.96"), Decimal("0.95")),
        ("Сидоров Сидор", "new"): (Decimal("0.96"), Decimal("1")),
        ("Сидоров Сидор", "contact"): (Decimal("0.90"), Decimal("0.8")),
        ("Сидоров Сидор", "presentation"): (Decimal("0.70"), Decimal("0.8")),
        ("Сидоров Сидор", "contract"): (Decimal("0.80"), Decimal("0.95")),
    }
    one_week = [r for r in weekly if r["gap"] is not None]
    assert all(r["gap"] == r["conversion_rate"] - r["target_rate"] for r in one_week)


def test_coaching_pairs_say_who_learns_what_from_whom(built: psycopg.Connection) -> None:
    pairs = {(r["manager_name"], r["canonical_stage"]): r["coach_manager_name"]
             for r in rows(built, "select * from marts.rpt_coaching_pairs")}  # fmt: skip
    assert pairs == {
        ("Иванов Иван", "new"): "Сидоров Сидор",
        ("Иванов Иван", "contact"): "Сидоров Сидор",
        ("Сидоров Сидор", "new"): None,
        ("Сидоров Сидор", "presentation"): "Иванов Иван",
        ("Сидоров Сидор", "contract"): "Иванов Иван",
    }
