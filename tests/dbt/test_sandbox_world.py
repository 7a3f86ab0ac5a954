"""The marts against the sandbox's ground truth: a generated world, rendered as its APIs
serve it, landed in the raw tables (the bulk path), built with dbt, compared with the truth
the world computes from its own model — deal by deal, transition by transition, issue by
issue and in the aggregates. Then time moves on: an incremental build equals a full refresh
and the new truth, and the issue memory keeps first detections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from dwh.warehouse import Target, bi_credentials
from sandbox.world.advance import advance
from sandbox.world.generate import generate
from sandbox.world.layout import CANONICAL_STAGES, STAGE_REASON_CANONICAL
from sandbox.world.model import World
from sandbox.world.truth import Truth, load_truth, write_truth
from tests.dbt import truth_compare as tc
from tests.dbt.conftest import DEAL_MODELS, Dbt, clean_warehouse
from tests.dbt.landing import land
from tests.dbt.world_landing import land_world, write_world_config

SEED, DEALS = 20240917, 700
COMMENT_RULES = ("missing_comment", "reason_needs_review")
DOCUMENTED = tuple(
    f"models/{folder}/"
    for folder in ("staging/amocrm", "staging/bitrix24", "staging/onec", "intermediate/stages", "intermediate/deals",
                   "intermediate/people", "intermediate/customers", "intermediate/money", "intermediate/stage_history",
                   "intermediate/reasons", "intermediate/quality", "marts")
)  # fmt: skip


@dataclass
class Built:
    world: World
    truth: Truth
    conn: psycopg.Connection
    folder: Path


@pytest.fixture(scope="module")
def built(warehouse: Target, dbt: Dbt, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("world")
    world = generate(SEED, DEALS)
    truth = load_truth(write_truth(world, folder / "truth"))
    with clean_warehouse(warehouse) as conn:
        write_world_config(conn, world, folder / "config")
        land_world(conn, world, config_dir=folder / "config")
        dbt("build", "--full-refresh", *DEAL_MODELS)  # every model, data test and unit test
        yield Built(world, truth, conn, folder)


def test_every_deal_equals_the_truth(built: Built) -> None:
    live = [d for d in built.truth.deals if d["is_deleted"] == "false"]
    assert len(live) > 600 and {d["status"] for d in live} == {"open", "won", "lost"}
    assert tc.deal_differences(built.conn, built.truth) == {}


def test_every_transition_equals_the_truth(built: Built) -> None:
    assert len(built.truth.transitions) > 1000
    assert tc.transition_differences(built.conn, built.truth) == {}


def test_issues_are_found_exactly_where_the_truth_put_defects(built: Built) -> None:
    expected = tc.expected_issues(built.truth)
    kinds = {kind for _, kind in expected}
    assert {"missing_reason", "missing_comment", "skipped_conditional_refusal", "lost_too_fast",
            "unknown_reason", "unmapped_stage", "onec_empty_dates"} <= kinds  # fmt: skip
    found = tc.found_issues(built.conn)
    assert sorted(found - expected) == [] and sorted(expected - found) == []


def test_loss_reports_equal_the_truths_aggregates(built: Built) -> None:
    by_stage = {
        (r["loss_month"], r["lost_at_canonical_stage"]): (r["lost_deals"], r["lost_amount_base"])
        for r in tc.rows(built.conn, "select * from marts.rpt_loss_by_stage")
    }
    assert by_stage == tc.expected_loss_by_stage(built.truth)
    by_reason = {
        (r["loss_month"], r["loss_reason_code"]): (r["lost_deals"], r["lost_amount_base"])
        for r in tc.rows(built.conn, "select * from marts.rpt_loss_by_reason")
    }
    assert by_reason == tc.expected_loss_by_reason(built.truth)
    by_manager = {
        (r["loss_month"], r["manager_email"]): (r["closed_deals"], r["lost_deals"])
        for r in tc.rows(
            built.conn,
            "select r.*, m.manager_email from marts.rpt_loss_by_manager as r"
            " join marts.dim_managers as m using (manager_key)",
        )
    }
    assert by_manager == tc.expected_loss_by_manager(built.truth)
    shares = built.conn.execute(
        "select loss_month, sum(lost_deals_share), sum(lost_amount_share) from marts.rpt_loss_by_stage group by 1"
    ).fetchall()
    assert shares and all(
        abs(a - 1) < Decimal("0.0001") and abs(b - 1) < Decimal("0.0001") for _, a, b in shares
    )


def test_funnel_conversion_equals_the_truths_furthest_stages(built: Built) -> None:
    funnel = {
        (r["week_start"], r["manager_email"], r["canonical_stage"]): (
            r["reached_stage"],
            r["reached_next_stage"],
        )
        for r in tc.rows(
            built.conn,
            "select f.*, m.manager_email from marts.rpt_funnel_conversion as f"
            " join marts.dim_managers as m using (manager_key)",
        )
    }
    assert funnel == tc.expected_funnel(built.truth, CANONICAL_STAGES)


def test_customer_history_and_wins_before_a_loss(built: Built) -> None:
    live = [d for d in built.truth.deals if d["is_deleted"] == "false" and d["customer_key"]]
    history = {r["customer_key"]: r for r in tc.rows(built.conn, "select * from marts.rpt_customer_history")}
    assert set(history) == {d["customer_key"] for d in live}
    assert any(r["source_count"] > 1 for r in history.values()), "customers known by INN in several systems"
    for key, row in history.items():
        mine = [d for d in live if d["customer_key"] == key]
        assert row["won_deals"] == sum(d["status"] == "won" for d in mine), key
        assert row["lost_deals"] == sum(d["status"] == "lost" for d in mine), key
    before = {r["deal_key"]: r["customer_won_deals_before"] for r in tc.rows(
        built.conn, "select deal_key, customer_won_deals_before from marts.fct_lost_deals")}  # fmt: skip
    lost = [d for d in live if d["status"] == "lost"]
    expected = {
        d["deal_key"]: sum(1 for w in live if w["customer_key"] == d["customer_key"] and w["status"] == "won"
                           and w["closed_at"] < d["closed_at"])
        for d in lost
    }  # fmt: skip
    assert {k: before[k] for k in expected} == expected and any(expected.values())


def test_unmapped_stages_and_reasons_are_listed_for_engineers(built: Built) -> None:
    listed = {(r[0], r[1], r[2]) for r in built.conn.execute(
        "select source_name, value_type, source_value from marts.dq_unmapped_values").fetchall()}  # fmt: skip
    stages = {(p.source_name, "stage", s.name) for p in built.world.pipelines for s in p.stages
              if s.kind == "process" and s.canonical is None}  # fmt: skip
    # a file has no catalogue of reasons: only those its deals carry are known
    systems = {s.name: s.system for s in built.world.sources}
    used = {(d["source_name"], d["loss_reason_raw"]) for d in built.truth.deals if d["status"] == "lost"}
    reasons = {
        (r.source_name, "loss_reason", r.name) for r in built.world.loss_reasons
        if r.canonical is None and (systems[r.source_name] != "file" or (r.source_name, r.name) in used)
    }  # fmt: skip
    reasons |= {(p.source_name, "loss_reason", s.reason_name) for p in built.world.pipelines for s in p.stages
                if s.reason_name and STAGE_REASON_CANONICAL.get(s.reason_name) is None}  # fmt: skip
    # every Megaplan negative state names a reason: the generic one too
    reasons |= {(p.source_name, "loss_reason", s.name) for p in built.world.pipelines for s in p.stages
                if systems[p.source_name] == "megaplan" and s.kind == "lost" and not s.reason_name}  # fmt: skip
    assert stages and reasons
    assert listed == stages | reasons


def test_the_bi_role_reads_marts_only_and_no_contact_data(built: Built, warehouse: Target) -> None:
    user, password = bi_credentials()
    info = psycopg.conninfo.make_conninfo(warehouse.conninfo(), user=user, password=password)
    with psycopg.connect(info, autocommit=True) as bi:
        assert bi.execute("select count(*) from marts.fct_deals").fetchone()[0] > 600
        for table in ("raw_amocrm.leads", "staging.stg_amocrm__leads", "intermediate.int_deals_enriched"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(f"select 1 from {table} limit 1")
    contacts = {c.phone for c in built.world.contacts if c.phone} | {
        c.email for c in built.world.contacts if c.email
    }
    columns = built.conn.execute(
        "select table_name, column_name from information_schema.columns"
        " where table_schema = 'marts' and data_type in ('text', 'character varying', 'jsonb')"
    ).fetchall()
    assert columns and not [c for _, c in columns if c in ("record", "phone", "phones", "contact_email")]
    values: set[str] = set()
    for table, column in columns:
        values |= {
            v for (v,) in built.conn.execute(f'select distinct "{column}"::text from marts."{table}"') if v
        }
    assert len(contacts) > 100 and not (contacts & values)


def test_every_model_and_column_is_described_and_persisted(built: Built, dbt: Dbt) -> None:
    """Every model and column has a description, and the marts carry them as PostgreSQL
    comments (what Metabase shows)."""
    manifest = json.loads(dbt.manifest.read_text(encoding="utf-8"))
    models = [n for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and n["original_file_path"].startswith(DOCUMENTED)]  # fmt: skip
    assert len(models) > 60
    for node in models:
        assert node["description"].strip(), f"{node['name']} has no description"
        actual = [c for (c,) in built.conn.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
            " order by ordinal_position", (node["schema"], node["name"]))]  # fmt: skip
        described = {name for name, col in node["columns"].items() if col.get("description", "").strip()}
        assert actual and set(actual) == described == set(node["columns"]), node["name"]
        if node["schema"] == "marts":
            comments = built.conn.execute(
                "select obj_description(c.oid), count(*) filter (where col_description(c.oid, a.attnum) <> ''),"
                " count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
                " where n.nspname = 'marts' and c.relname = %s group by c.oid", (node["name"],)).fetchone()  # fmt: skip
            assert comments[0] and comments[1] == comments[2], f"marts.{node['name']}: comments not persisted"


def test_an_incremental_build_equals_a_full_refresh_and_the_new_truth(built: Built, dbt: Dbt) -> None:
    """Runs last: it moves the module's world on."""
    conn = built.conn
    issues_before = {(r[0], r[1]): r[2] for r in conn.execute(
        "select deal_key, issue_type, first_detected_at from marts.dq_lost_deal_issues where is_open")}  # fmt: skip
    changes = advance(built.world, 20, seed=1)
    assert changes.created and changes.updated and changes.deleted
    land_world(conn, built.world, replace=False, config_dir=built.folder / "config")
    truth = load_truth(write_truth(built.world, built.folder / "truth-after"))
    # and a manager writes the missing comment on one lost amoCRM deal
    fixed = next(d for d in truth.deals if d["source_system"] == "amocrm" and d["is_deleted"] == "false"
                 and (d["deal_key"], "missing_comment") in tc.expected_issues(truth))  # fmt: skip
    note = {"id": 999_000_001, "entity_id": int(fixed["deal_id"]), "note_type": "common", "created_by": 0,
            "created_at": int(built.world.now.timestamp()), "updated_at": int(built.world.now.timestamp()),
            "params": {"text": "Клиент выбрал поставщика с отсрочкой платежа на 60 дней."}}  # fmt: skip
    land(conn, "amocrm", fixed["source_name"], "notes", [note])
    dbt("run", *DEAL_MODELS)
    written = _rows_written(dbt)
    total = conn.execute("select count(*) from marts.fct_deals").fetchone()[0]
    assert 0 < written["fct_deals"] < total / 2, "only the changed deals are written"
    assert tc.deal_differences(conn, truth) == {"loss_comment": 1}
    assert tc.transition_differences(conn, truth) == {}
    expected = {
        i for i in tc.expected_issues(truth) if i[0] != fixed["deal_key"] or i[1] not in COMMENT_RULES
    }
    assert tc.found_issues(conn) == expected

    issues_after = {(r[0], r[1]): (r[2], r[3], r[4]) for r in conn.execute(
        "select deal_key, issue_type, first_detected_at, resolved_at, is_open from marts.dq_lost_deal_issues")}  # fmt: skip
    assert all(issues_after[k][0] == first for k, first in issues_before.items()), "first detection is kept"
    resolved = {k for k, (_, resolved_at, is_open) in issues_after.items() if not is_open}
    assert (fixed["deal_key"], "missing_comment") in resolved
    assert all(issues_after[k][1] is not None and k in issues_before for k in resolved)
    new = [k for k, (first, _, is_open) in issues_after.items() if is_open and k not in issues_before]
    assert new and all(issues_after[k][0] > max(issues_before.values()) for k in new)

    incremental = {t: _snapshot(conn, t) for t in ("fct_deals", "fct_stage_transitions")}
    dbt("run", "--full-refresh", *DEAL_MODELS)
    for table, rows in incremental.items():
        assert _snapshot(conn, table) == rows, f"{table}: the incremental build differs from a full refresh"
    assert len(_snapshot(conn, "dq_lost_deal_issues")) == len(issues_after), (
        "--full-refresh keeps the issue memory"
    )


def _snapshot(conn: psycopg.Connection, table: str) -> list[tuple]:
    return sorted(tuple(r) for r in conn.execute(f"select * from marts.{table}").fetchall())


def _rows_written(dbt: Dbt) -> dict[str, int]:
    results = json.loads((dbt.target_path / "run_results.json").read_text(encoding="utf-8"))["results"]
    return {r["unique_id"].split(".")[-1]: r["adapter_response"].get("rows_affected", 0) for r in results}
