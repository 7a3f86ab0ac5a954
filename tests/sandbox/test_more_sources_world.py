"""Megaplan, Creatio, RosBiznesSoft and the exported spreadsheet funnel in the generated world:
their deals carry each system's own features, the truth covers them, and the sandbox serves
them (the stand-ins over HTTP, the file source as exports in a folder)."""

from __future__ import annotations

import csv
import io
import json
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from sandbox.creatio import LOGIN_PATH
from sandbox.files.render import COLUMNS
from sandbox.rosbiznessoft import API_PATH
from sandbox.serve import start_sandbox
from sandbox.world.demo_config import RBS_INSTALLATION
from sandbox.world.model import Deal, Stage, World
from sandbox.world.truth import Truth, load_truth, write_truth

MEGAPLAN, CREATIO, RBS, FILE = "megaplan_main", "creatio_b2b", "rbs", "legacy_excel"


def final_stage(world: World, deal: Deal) -> Stage:
    pipeline = next(
        p for p in world.pipelines if p.source_name == deal.source_name and p.id == deal.pipeline_id
    )
    return pipeline.stage(deal.stage_id)


@pytest.fixture(scope="module")
def truth(demo_world: World, tmp_path_factory: pytest.TempPathFactory) -> Truth:
    return load_truth(write_truth(demo_world, tmp_path_factory.mktemp("truth")))


# -- the world -------------------------------------------------------------------------------------
def test_megaplan_names_reasons_by_state_in_one_program_and_by_field_in_the_other(demo_world: World) -> None:
    programs = {p.name: p for p in demo_world.pipelines if p.source_name == MEGAPLAN}
    assert set(programs) == {"Продажи", "Проекты"}
    sales_lost = [s for s in programs["Продажи"].stages if s.kind == "lost"]
    assert len(sales_lost) == 4 and all(s.reason_name == s.name for s in sales_lost)  # one state per reason
    assert [s.name for s in programs["Проекты"].stages if s.kind == "lost"] == ["Отказ"]
    lost = [d for d in demo_world.deals if d.source_name == MEGAPLAN and d.status == "lost"]
    in_sales = [d for d in lost if d.pipeline_id == programs["Продажи"].id]
    in_projects = [d for d in lost if d.pipeline_id == programs["Проекты"].id]
    # every per-reason state closes deals; there, the state is the reason and the field is empty
    assert {final_stage(demo_world, d).name for d in in_sales} == {s.name for s in sales_lost}
    assert all(d.loss_reason_id is None for d in in_sales)
    # "Отказ" keeps the reason in the enumeration field, mostly filled
    assert {final_stage(demo_world, d).name for d in in_projects} == {"Отказ"}
    filled = sum(d.loss_reason_id is not None for d in in_projects)
    assert 0.75 * len(in_projects) < filled < len(in_projects)
    # a program's deal never moves to another program
    assert all(
        len({m.pipeline_id for m in d.moves}) == 1 for d in demo_world.deals if d.source_name == MEGAPLAN
    )


def test_creatio_rbs_and_file_deals_look_like_their_systems(demo_world: World) -> None:
    by_source: dict[str, list[Deal]] = {}
    for deal in demo_world.deals:
        by_source.setdefault(deal.source_name, []).append(deal)
    for name in (MEGAPLAN, CREATIO, RBS, FILE):
        assert {d.status for d in by_source[name]} == {"open", "won", "lost"}, name
    creatio = by_source[CREATIO]
    assert all(uuid.UUID(d.id) and d.number == d.id and d.currency == "RUB" for d in creatio)
    assert len([p for p in demo_world.pipelines if p.source_name == CREATIO]) == 1  # one stage list per site
    stages = {s.id: s for p in demo_world.pipelines if p.source_name == CREATIO for s in p.stages}
    # deals pass the conditional refusal, and close lost in either of the two failure stages
    assert any(stages[m.stage_id].kind == "conditional_refusal" for d in creatio for m in d.moves)
    closed_lost_in = {final_stage(demo_world, d).name for d in creatio if d.status == "lost"}
    assert closed_lost_in == {"Закрыта и не реализована", "Отклонена клиентом"}
    rbs = by_source[RBS]
    assert all(d.id.isdigit() and d.number == f"С-{int(d.id):05d}" for d in rbs)
    assert {p.name for p in demo_world.pipelines if p.source_name == RBS} == {"Продажи", "Тендеры"}
    files = by_source[FILE]
    assert all(d.deleted_at is None for d in files)  # an export deletes nothing
    file_pipelines = [p for p in demo_world.pipelines if p.source_name == FILE]
    assert all(p.id == p.name and all(s.id == s.name for s in p.stages) for p in file_pipelines)
    companies = [c for c in demo_world.companies if c.source_name == FILE]
    assert all(c.id == c.name for c in companies) and len({c.id for c in companies}) == len(companies)
    for source in (MEGAPLAN, CREATIO, RBS):
        assert any(d.deleted_at is not None for d in by_source[source]), source


# -- the truth -------------------------------------------------------------------------------------
def test_truth_rows_for_the_new_sources(truth: Truth, demo_world: World) -> None:
    rows = {r["deal_key"]: r for r in truth.deals}
    systems = Counter(r["source_system"] for r in truth.deals)
    assert {"megaplan", "creatio", "rosbiznessoft", "file"} <= set(systems)
    for deal in demo_world.deals:
        row = rows[f"{deal.source_name}:{deal.id}"]
        if deal.source_name == CREATIO:  # no pipelines in Creatio
            assert row["pipeline_name"] == "" and row["lost_at_pipeline"] == ""
        if deal.source_name == MEGAPLAN and deal.status == "lost" and deal.loss_reason_id is None:
            assert row["loss_reason_raw"] == final_stage(demo_world, deal).name
    megaplan_lost = [r for r in truth.deals if r["source_name"] == MEGAPLAN and r["status"] == "lost"]
    raw = Counter(r["loss_reason_raw"] for r in megaplan_lost)
    assert raw["Отказ: дорого"] and raw["Отказ"]  # a per-reason state, and "Отказ" with an empty field
    assert {r["loss_reason_code"] for r in megaplan_lost if r["loss_reason_raw"] == "Не дозвонились 📵"} == {
        "other"
    }
    transitions = Counter(t["source_name"] for t in truth.transitions)
    for name in (MEGAPLAN, CREATIO, RBS, FILE):
        assert transitions[name] > 50, name
    issues = Counter(r["source_name"] for r in truth.dq_issues)
    assert all(issues[name] > 0 for name in (MEGAPLAN, CREATIO, RBS, FILE))
    assert set(truth.summary["by_source"]) >= {MEGAPLAN, CREATIO, RBS, FILE}


# -- the sandbox serves them -----------------------------------------------------------------------
def test_the_sandbox_serves_every_new_source(small_world: World, tmp_path: Path) -> None:
    sandbox = start_sandbox(small_world, exports_dir=tmp_path / "exports")
    try:
        env = sandbox.env
        live = Counter(d.source_name for d in small_world.deals if d.deleted_at is None)

        megaplan = sandbox.standins[MEGAPLAN]
        params = quote(json.dumps({"limit": 100}), safe="")
        answer = httpx.get(f"{sandbox.urls[MEGAPLAN]}/api/v3/deal?{params}",
                           headers={"Authorization": f"Bearer {env['MEGAPLAN_TOKEN']}"})  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert 0 < len(answer.json()["data"]) == min(100, live[MEGAPLAN])
        assert megaplan.url == sandbox.urls[MEGAPLAN]

        with httpx.Client(base_url=sandbox.urls[CREATIO]) as http:
            login = http.post(LOGIN_PATH, json={"UserName": env["CREATIO_USER"],
                                                "UserPassword": env["CREATIO_PASSWORD"]})  # fmt: skip
            assert login.status_code == 200 and login.json()["Code"] == 0
            answer = http.get("/0/odata/Opportunity", params={"$count": "true"},
                              headers={"BPMCSRF": http.cookies["BPMCSRF"]})  # fmt: skip
            assert answer.status_code == 200, answer.text
            assert answer.json()["@odata.count"] == live[CREATIO]

        auth = ("<?xml version='1.0' encoding='utf8' ?><request><action type='auth' uid='1'>"
                f"<login>{env['RBS_USER']}</login><password>{env['RBS_PASSWORD']}</password></action></request>")  # fmt: skip
        login = httpx.post(sandbox.urls[RBS] + API_PATH, data={"xml": auth})
        session = ET.fromstring(login.text.split("?>", 1)[1]).findtext("action/sess_id")
        assert session
        structure = RBS_INSTALLATION.structure("deals")  # the installation's own name
        listing = f"<request><action type='list' uid='2'><structure name='{structure}'/></action></request>"
        answer = httpx.post(
            sandbox.urls[RBS] + API_PATH, data={"xml": listing}, headers={"Cookie": f"sess_id={session}"}
        )
        action = ET.fromstring(answer.text.split("?>", 1)[1]).find("action")
        assert action is not None and action.findtext("status") == "true", answer.text
        assert structure != "documents.deals" and len(action.findall("structure/item")) > 0

        folder = Path(sandbox.urls[FILE])
        assert folder == (tmp_path / "exports" / FILE).resolve()
        (deals_file,) = (folder / "deals").iterdir()
        (history_file,) = (folder / "history").iterdir()
        exported = list(csv.DictReader(io.StringIO(deals_file.read_bytes().decode("cp1251")), delimiter=";"))
        assert len(exported) == live[FILE] and {r[COLUMNS["pipeline"]] for r in exported} == {
            "Воронка продаж"
        }
        assert history_file.stat().st_mtime == small_world.now.timestamp()

        # time moves on: the stand-ins see the new world, the file source exports again
        changes = sandbox.advance(3, seed=1)
        assert changes.total > 0
        assert len(list((folder / "deals").iterdir())) == len(list((folder / "history").iterdir())) == 2
    finally:
        sandbox.stop()
