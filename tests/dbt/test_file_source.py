"""File connections in the marts: hand-built worlds (sandbox/files/fixtures.py) exported as a
CRM or a spreadsheet would export them, landed by the file extractor itself, mapped in
funnel.yaml from the same worlds and built with dbt; the marts are compared with the worlds
deal by deal.

- ``legacy_excel``: one CSV export (cp1251, ``;``) with its stage history file: every
  transition is known.
- ``sheet_funnel``: an XLSX funnel exported once a day for four days, no history: its
  transitions are the stage changes seen between two exports, and a deal's stage is the one
  its last export shows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from dwh.config import load_config
from dwh.config.tables import write_config_tables
from dwh.warehouse import Target
from extractors.common.runner import run_connection
from sandbox.files import COLUMNS, export_rows, write_exports, write_xlsx
from sandbox.files.fixtures import build_world
from sandbox.files.render import connection_settings
from sandbox.rosbiznessoft.fixtures import change_world
from sandbox.world.demo_config import alerts_yaml, funnel_yaml, source_mapping
from sandbox.world.model import Company, Stage, World
from tests.dbt.conftest import DEAL_MODELS, Dbt, clean_warehouse

WITH_HISTORY = "legacy_excel"
SNAPSHOTS_ONLY = "sheet_funnel"
EXPORT_DAYS = 4


@dataclass
class Seen:
    """A deal as one export of the spreadsheet showed it."""

    pipeline_id: str
    stage_id: str
    status: str
    manager_key: str
    amount: Decimal
    closed_at: datetime | None
    loss_reason_id: str | None


@dataclass
class Built:
    worlds: dict[str, World]
    conn: psycopg.Connection
    # SNAPSHOTS_ONLY: deal id -> what each export that listed it showed, oldest first
    exports: dict[str, list[Seen]] = field(default_factory=dict)


def _rows(conn: psycopg.Connection, query: str, *params: Any) -> list[dict[str, Any]]:
    cur = conn.execute(query, params)
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _stage(world: World, stage_id: str) -> Stage:
    return next(s for p in world.pipelines for s in p.stages if s.id == stage_id)


def _land(conn: psycopg.Connection, config: Path, name: str) -> None:
    report = run_connection(load_config(config).sources.get(name), conn, "incremental")
    assert report.error is None and not report.rejects, (report.error, report.rejects)


def _export_spreadsheet(world: World, folder: Path, day: int, exports: dict[str, list[Seen]]) -> None:
    """The day's XLSX export, dated (modification time) at the world's clock."""
    header, rows = export_rows(world, SNAPSHOTS_ONLY)
    path = write_xlsx(folder / f"Воронка_{day}.xlsx", header, rows)
    os.utime(path, (world.now.timestamp(), world.now.timestamp()))
    listed = {row[COLUMNS["deal_id"]] for row in rows}
    for deal in world.deals:
        if deal.id in listed:
            seen = Seen(deal.pipeline_id, deal.stage_id, deal.status, deal.manager_key, deal.amount,
                        deal.closed_at, deal.loss_reason_id)  # fmt: skip
            exports.setdefault(deal.id, []).append(seen)


def _write_config(conn: psycopg.Connection, worlds: dict[str, World], folder: Path, exports: Path) -> None:
    sources = [
        {"name": WITH_HISTORY, **connection_settings(exports / WITH_HISTORY)},
        {"name": SNAPSHOTS_ONLY, "type": "file", "path": str(exports / SNAPSHOTS_ONLY), "timezone": "Europe/Moscow",
         "columns": dict(COLUMNS)},
    ]  # fmt: skip
    funnel = funnel_yaml(worlds[WITH_HISTORY])
    funnel["sources"][SNAPSHOTS_ONLY] = source_mapping(worlds[SNAPSHOTS_ONLY], SNAPSHOTS_ONLY)
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in (("sources", {"sources": sources}), ("funnel", funnel), ("alerts", alerts_yaml())):
        text = yaml.safe_dump(payload, allow_unicode=True, sort_keys=False)
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    write_config_tables(conn, load_config(folder))


@pytest.fixture(scope="module")
def built(warehouse: Target, dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("file-source")
    worlds = {
        WITH_HISTORY: build_world(seed=7, deals=150, source_name=WITH_HISTORY),
        SNAPSHOTS_ONLY: build_world(seed=11, deals=60, source_name=SNAPSHOTS_ONLY),
    }
    config = root / "config"
    with clean_warehouse(warehouse) as conn:
        write_exports(worlds[WITH_HISTORY], WITH_HISTORY, root / "exports" / WITH_HISTORY)
        (root / "exports" / SNAPSHOTS_ONLY).mkdir(parents=True)
        _write_config(conn, worlds, config, root / "exports")
        _land(conn, config, WITH_HISTORY)
        built = Built(worlds, conn)
        spreadsheet = worlds[SNAPSHOTS_ONLY]
        for day in range(EXPORT_DAYS):
            if day:
                change_world(spreadsheet, hours=24, seed=day)
            _export_spreadsheet(spreadsheet, root / "exports" / SNAPSHOTS_ONLY, day, built.exports)
            _land(conn, config, SNAPSHOTS_ONLY)
        dbt("build", "--full-refresh", *DEAL_MODELS)
        yield built


def _deals(conn: psycopg.Connection, source: str) -> dict[str, dict[str, Any]]:
    return {
        r["deal_id"]: r for r in _rows(conn, "select * from marts.fct_deals where source_name = %s", source)
    }


def _transitions(conn: psycopg.Connection, source: str) -> dict[str, int]:
    query = (
        "select deal_id, count(*) from marts.fct_stage_transitions where source_name = %s group by deal_id"
    )
    return dict(conn.execute(query, (source,)).fetchall())


def _lost_at(world: World, stages: list[str]) -> str | None:
    """The last working stage before the loss (a conditional refusal is not one)."""
    before = [s for s in stages[:-1] if _stage(world, s).kind not in ("conditional_refusal", "lost")]
    return before[-1] if before else None


def _customer_key(company: Company | None, source: str) -> str | None:
    """One key across systems for a customer with an INN; else the connection's own (its name)."""
    if company is None:
        return None
    return f"inn:{company.inn_canonical}" if company.inn_canonical else f"{source}:{company.name}"


def _changes(stages: list[tuple[str, str]]) -> int:
    return sum(1 for a, b in zip(stages, stages[1:], strict=False) if a != b)


def _compare(
    mine: dict[str, Any], expected: dict[str, Any], deal_id: str, wrong: dict[str, list[str]]
) -> None:
    for column, value in expected.items():
        if mine[column] != value:
            wrong.setdefault(column, []).append(f"{deal_id}: {mine[column]!r} != {value!r}")


def test_an_export_with_its_history_is_in_the_marts_deal_by_deal(built: Built) -> None:
    world = built.worlds[WITH_HISTORY]
    mine = _deals(built.conn, WITH_HISTORY)
    assert {d.status for d in world.deals} == {"open", "won", "lost"}
    assert set(mine) == {d.id for d in world.deals}
    managers = {m.key: m.name for m in world.managers}
    companies = {c.id: c for c in world.companies}
    wrong: dict[str, list[str]] = {}
    for deal in world.deals:
        moves = [m.stage_id for m in sorted(deal.moves, key=lambda m: m.at)]
        company = companies.get(deal.company_id or "")
        expected = {
            "status": deal.status,
            "deal_name": deal.name,
            "stage_name": deal.stage_id,  # a file's stage is its name
            "pipeline_name": deal.pipeline_id,
            "manager_name": managers[deal.manager_key],
            "amount": deal.amount,
            "currency": deal.currency,
            "closed_at": deal.closed_at,
            "loss_reason_raw": deal.loss_reason_id if deal.status == "lost" else None,
            "lost_at_stage": _lost_at(world, moves) if deal.status == "lost" else None,
            "customer_key": _customer_key(company, WITH_HISTORY),
        }
        _compare(mine[deal.id], expected, deal.id, wrong)
    assert wrong == {}
    # the stages' kinds come from the deals' status column and funnel.yaml's names
    kinds = {r["stage_name"]: r["stage_kind"] for r in mine.values()}
    assert {kinds[d.stage_id] for d in world.deals if d.status == "won"} == {"won"}
    assert {kinds[d.stage_id] for d in world.deals if d.status == "lost"} == {"lost"}
    refusal = {r["passed_conditional_refusal"] for r in mine.values()}
    assert refusal == {True, False}


def test_the_history_file_gives_every_transition(built: Built) -> None:
    expected: dict[str, int] = {}
    for deal in built.worlds[WITH_HISTORY].deals:
        changes = _changes([(m.pipeline_id, m.stage_id) for m in sorted(deal.moves, key=lambda m: m.at)])
        if changes:
            expected[deal.id] = changes
    assert sum(expected.values()) > 200
    assert _transitions(built.conn, WITH_HISTORY) == expected


def test_a_spreadsheet_without_history_is_what_its_last_export_shows(built: Built) -> None:
    world = built.worlds[SNAPSHOTS_ONLY]
    mine = _deals(built.conn, SNAPSHOTS_ONLY)
    assert set(mine) == set(built.exports)  # an export lists what exists; nothing is deleted
    assert any(d.deleted_at is not None for d in world.deals if d.id in mine)  # gone, yet kept
    managers = {m.key: m.name for m in world.managers}
    wrong: dict[str, list[str]] = {}
    for deal_id, seen in built.exports.items():
        last = seen[-1]
        stages = [s.stage_id for s in seen]
        distinct = [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]]
        expected = {
            "status": last.status,
            "stage_name": last.stage_id,
            "manager_name": managers[last.manager_key],
            "amount": last.amount,
            "closed_at": last.closed_at,
            "loss_reason_raw": last.loss_reason_id if last.status == "lost" else None,
            # a deal lost before the first export was never seen working
            "lost_at_stage": _lost_at(world, distinct) if last.status == "lost" else None,
        }
        _compare(mine[deal_id], expected, deal_id, wrong)
    assert wrong == {}


def test_without_history_transitions_are_the_stage_changes_seen_between_exports(built: Built) -> None:
    expected: dict[str, int] = {}
    for deal_id, seen in built.exports.items():
        changes = _changes([(s.pipeline_id, s.stage_id) for s in seen])
        if changes:
            expected[deal_id] = changes
    assert expected  # some deals moved between two exports
    assert _transitions(built.conn, SNAPSHOTS_ONLY) == expected
    # a move is dated at the export that shows it, not when it happened in the CRM
    exported = {
        r["observed_at"]
        for r in _rows(
            built.conn,
            "select observed_at from staging.stg_file__stage_snapshots where source_name = %s",
            SNAPSHOTS_ONLY,
        )
    }
    entered = {
        r["entered_at"]
        for r in _rows(
            built.conn,
            "select entered_at from intermediate.int_stage_visits where source_name = %s and visit_number > 1",
            SNAPSHOTS_ONLY,
        )
    }
    assert entered and entered <= exported


def test_a_customer_with_an_inn_is_one_customer_in_both_connections(built: Built) -> None:
    shared = _rows(
        built.conn,
        "select customer_key, source_names from marts.dim_customers where customer_key like 'inn:%%' "
        "and source_names like %s and source_names like %s",
        f"%{WITH_HISTORY}%",
        f"%{SNAPSHOTS_ONLY}%",
    )
    inns = {c.inn_canonical for w in built.worlds.values() for c in w.companies if c.inn_canonical}
    assert shared and {r["customer_key"].removeprefix("inn:") for r in shared} <= inns
