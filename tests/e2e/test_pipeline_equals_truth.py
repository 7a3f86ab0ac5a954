"""The product end to end, as it runs in production: Dagster extracts every connection of a
sandbox world — amoCRM, Bitrix24, 1C, Megaplan, Creatio, RosBiznesSoft over real HTTP on
loopback (the stand-ins enforce the real limits), and a folder of export files — dbt builds the
marts, the quality checks run; then the marts equal the world's ground truth, deal by deal,
transition by transition, issue by issue. Then the world moves on, an incremental run follows,
and the marts equal the new truth."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dwh.warehouse import Target
from sandbox.world.layout import SOURCE_SHARES
from sandbox.world.truth import load_truth, write_truth
from tests.dbt import truth_compare as tc
from tests.e2e.pipeline import failures, materialize_pipeline, reset, sandbox_world


def extract_runs(conn: psycopg.Connection) -> dict[str, tuple[str, int, int]]:
    rows = conn.execute("""select distinct on (connection_name) connection_name, status, records, requests
                           from ops.extract_runs order by connection_name, run_id desc""").fetchall()
    return {name: (status, records, requests) for name, status, records, requests in rows}


def assert_marts_equal_truth(conn: psycopg.Connection, truth) -> None:
    assert tc.deal_differences(conn, truth) == {}
    assert tc.transition_differences(conn, truth) == {}
    expected, found = tc.expected_issues(truth), tc.found_issues(conn)
    assert sorted(found - expected) == [] and sorted(expected - found) == []


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "deals"), [(3, 450), (11, 300)])
def test_extract_build_and_marts_equal_the_truth(
    seed: int, deals: int, warehouse: Target, dbt_manifest: Path, tmp_path: Path
) -> None:
    reset(warehouse)
    with (
        sandbox_world(seed, deals, tmp_path) as run,
        psycopg.connect(warehouse.conninfo(), autocommit=True) as conn,
    ):
        result = materialize_pipeline(run)
        assert failures(result) == []
        runs = extract_runs(conn)
        assert set(runs) == set(SOURCE_SHARES)
        assert all(status == "ok" and records > 0 for status, records, _ in runs.values()), runs
        live = [d for d in run.truth.deals if d["is_deleted"] == "false"]
        assert {d["status"] for d in live} == {"open", "won", "lost"}
        assert {d["source_name"] for d in live} == set(SOURCE_SHARES)
        assert_marts_equal_truth(conn, run.truth)
        # the limits held: no stand-in saw a request over its account's limit
        amo = run.sandbox.standins["amo_retail"]
        assert amo.max_requests_in_window(1.0) <= 7

        if seed != 3:
            return
        # the world moves on (the file source exports again); the next (incremental) run lands
        # exactly the changes
        changes = run.sandbox.advance(10, seed=5)
        assert changes.created and changes.updated and changes.deleted
        truth = load_truth(write_truth(run.world, tmp_path / "truth-after"))
        before = {name: requests for name, (_, _, requests) in extract_runs(conn).items()}
        result = materialize_pipeline(run, mode="incremental")
        assert failures(result) == []
        after = extract_runs(conn)
        # the CRMs' incremental reads cost less than their full load; 1C, which has no
        # modification time, compares DataVersions over key scans (see extractors/onec/README.md)
        assert (
            after["amo_retail"][2] < before["amo_retail"]
            and after["b24_wholesale"][2] <= before["b24_wholesale"]
        )
        assert after["erp"][2] <= before["erp"] + 3, (before, after)
        # deletions are found by the nightly reconciliation
        result = materialize_pipeline(run, mode="full")
        assert failures(result) == []
        assert_marts_equal_truth(conn, truth)
