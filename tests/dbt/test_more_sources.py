"""Creatio, Megaplan and RosBiznesSoft in the marts: the stand-ins' hand-built worlds
(sandbox/creatio/fixtures.py, sandbox/megaplan/fixtures.py, sandbox/rosbiznessoft/fixtures.py), rendered as their APIs serve
them, landed in the raw tables as the extractors land them, mapped in funnel.yaml from the
same worlds and built with dbt; the marts are compared with the worlds deal by deal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from dwh.config import load_config
from dwh.config.tables import write_config_tables
from dwh.warehouse import Target
from sandbox.creatio import fixtures as creatio_fixtures
from sandbox.megaplan import fixtures as megaplan_fixtures
from sandbox.megaplan import render as megaplan
from sandbox.rosbiznessoft import fixtures as rbs_fixtures
from sandbox.rosbiznessoft.installation import DEFAULT as RBS_INSTALLATION
from sandbox.world.demo_config import alerts_yaml, funnel_yaml, source_mapping
from sandbox.world.model import Deal, Stage, World
from tests.dbt.conftest import DEAL_MODELS, Dbt, clean_warehouse
from tests.dbt.world_landing import land_connection

CREATIO = creatio_fixtures.SOURCE
MEGAPLAN = megaplan_fixtures.SOURCE
RBS = rbs_fixtures.SOURCE
SECRETS = {
    "CREATIO_B2B_USER": "warehouse",
    "CREATIO_B2B_PASSWORD": "s3cret",
    "MEGAPLAN_MAIN_TOKEN": "t0ken",
    "RBS_USER": "api",
    "RBS_PASSWORD": "pw",
}


@dataclass
class Built:
    worlds: dict[str, World]
    conn: psycopg.Connection


def write_config(conn: psycopg.Connection, worlds: dict[str, World], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sources = [
        {"name": CREATIO, "type": "creatio", "base_url": "http://127.0.0.1:18095",
         "username": "${CREATIO_B2B_USER}", "password": "${CREATIO_B2B_PASSWORD}"},
        {"name": MEGAPLAN, "type": "megaplan", "base_url": "http://127.0.0.1:18096",
         "auth": {"app_token": "${MEGAPLAN_MAIN_TOKEN}"}},
        {"name": RBS, "type": "rosbiznessoft", "base_url": "http://127.0.0.1:18097", "username": "${RBS_USER}",
         "password": "${RBS_PASSWORD}", "timezone": "Europe/Moscow"},
    ]  # fmt: skip
    funnel = funnel_yaml(worlds[CREATIO])
    funnel["people"] += funnel_yaml(worlds[MEGAPLAN])["people"] + funnel_yaml(worlds[RBS])["people"]
    funnel["sources"][RBS] = source_mapping(worlds[RBS], RBS)
    # Megaplan keeps the reason both ways: a state per reason, and an enumeration field
    funnel["sources"][MEGAPLAN] = {
        **source_mapping(worlds[MEGAPLAN], MEGAPLAN),
        "loss_reason_stages": True,
        "loss_reason_field": megaplan.LOSS_REASON_FIELD_TITLE,
    }
    for name, payload in (("sources", {"sources": sources}), ("funnel", funnel), ("alerts", alerts_yaml())):
        text = yaml.safe_dump(payload, allow_unicode=True, sort_keys=False)
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    write_config_tables(conn, load_config(folder))
    conn.commit()


@pytest.fixture(scope="module")
def built(warehouse: Target, dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("more-sources")
    worlds = {
        CREATIO: creatio_fixtures.build_world(),
        MEGAPLAN: megaplan_fixtures.build_world(),
        RBS: rbs_fixtures.build_world(),
    }
    with clean_warehouse(warehouse) as conn, pytest.MonkeyPatch.context() as env:
        for name, value in SECRETS.items():
            env.setenv(name, value)
        write_config(conn, worlds, folder / "config")
        land_connection(conn, worlds[CREATIO], "creatio", CREATIO)
        land_connection(conn, worlds[MEGAPLAN], "megaplan", MEGAPLAN)
        land_connection(conn, worlds[RBS], "rosbiznessoft", RBS, installation=RBS_INSTALLATION)
        dbt("build", "--full-refresh", *DEAL_MODELS)
        yield Built(worlds, conn)


def _live(world: World, source: str) -> list[Deal]:
    return [d for d in world.deals if d.deleted_at is None and d.source_name == source]


def _rows(conn: psycopg.Connection, query: str, *params: Any) -> list[dict[str, Any]]:
    cur = conn.execute(query, params)
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _stage(world: World, stage_id: str) -> Stage:
    return next(s for p in world.pipelines for s in p.stages if s.id == stage_id)


def _lost_at(world: World, deal: Deal) -> str | None:
    """The last working stage of a lost deal before its loss (a conditional refusal is not one)."""
    moves = sorted(deal.moves, key=lambda m: m.at)[:-1]
    before = [m for m in moves if _stage(world, m.stage_id).kind not in ("conditional_refusal", "lost")]
    return _stage(world, before[-1].stage_id).name if before else None


def _reason(world: World, deal: Deal) -> str | None:
    """Creatio, RosBiznesSoft: the catalogue's reason. Megaplan: the custom field's value, else the negative state."""
    if deal.status != "lost":
        return None
    named = {r.id: r.name for r in world.loss_reasons}.get(deal.loss_reason_id or "")
    if named is None and world.sources[0].system == "megaplan":
        return _stage(world, deal.stage_id).name
    return named


@pytest.mark.parametrize("source", [CREATIO, MEGAPLAN, RBS])
def test_every_live_deal_is_in_the_marts_as_in_its_system(built: Built, source: str) -> None:
    world, conn = built.worlds[source], built.conn
    mine = {
        r["deal_id"]: r for r in _rows(conn, "select * from marts.fct_deals where source_name = %s", source)
    }
    live = _live(world, source)
    assert len(live) > 100 and {d.status for d in live} == {"open", "won", "lost"}
    assert set(mine) == {d.id for d in live}  # deleted deals are not there
    managers = {m.key: m.name for m in world.managers}
    wrong: dict[str, list[str]] = {}
    for deal in live:
        row = mine[deal.id]
        expected = {
            "status": deal.status,
            "stage_name": _stage(world, deal.stage_id).name,
            "manager_name": managers[deal.manager_key],
            "amount": Decimal(deal.amount),
            "currency": deal.currency,
            "closed_at": deal.closed_at,
            "loss_reason_raw": _reason(world, deal),
            "lost_at_stage": _lost_at(world, deal) if deal.status == "lost" else None,
        }
        for column, value in expected.items():
            if row[column] != value:
                wrong.setdefault(column, []).append(f"{deal.id}: {row[column]!r} != {value!r}")
    assert wrong == {}


@pytest.mark.parametrize("source", [CREATIO, MEGAPLAN, RBS])
def test_transitions_are_the_moves_that_changed_the_stage(built: Built, source: str) -> None:
    counted = dict(
        built.conn.execute(
            "select deal_id, count(*) from marts.fct_stage_transitions where source_name = %s group by deal_id",
            (source,),
        ).fetchall()
    )
    expected: dict[str, int] = {}
    for deal in _live(built.worlds[source], source):
        stages = [m.stage_id for m in sorted(deal.moves, key=lambda m: m.at)]
        changes = sum(1 for a, b in zip(stages, stages[1:], strict=False) if a != b)
        if changes:
            expected[deal.id] = changes
    assert sum(expected.values()) > 200
    assert counted == expected


@pytest.mark.parametrize("source", [CREATIO, MEGAPLAN, RBS])
def test_lost_deals_without_a_reason_reach_the_issues(built: Built, source: str) -> None:
    world = built.worlds[source]
    found = {
        r["deal_id"]
        for r in _rows(
            built.conn,
            "select split_part(deal_key, ':', 2) as deal_id from marts.dq_lost_deal_issues "
            "where is_open and issue_type = 'missing_reason' and source_name = %s",
            source,
        )
    }
    expected = {d.id for d in _live(world, source) if d.status == "lost" and _reason(world, d) is None}
    if source != MEGAPLAN:
        assert expected  # Megaplan names every loss: the negative state is the reason when the field is empty
    assert found == expected
