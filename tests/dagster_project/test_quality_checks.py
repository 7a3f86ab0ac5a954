"""The Great Expectations suites run as Dagster asset checks: raw problems warn and let the
run go on; a broken mart is an error that blocks what is downstream of it."""

from pathlib import Path

import dagster as dg
import psycopg

from dagster_project.defs.quality.checks import MART_CHECK, RAW_CHECK, build_mart_checks, raw_check
from dagster_project.lib.resources import WarehouseResource
from expectations.marts import MART_SUITES
from tests.expectations.support import (  # noqa: F401 - fixtures
    build_good_marts,
    land_more_sources,
    land_world,
    marts_as_built,
    quality_database_url,
    quality_db,
    world,
)


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def run_checks(*checks: dg.AssetChecksDefinition, assets=(), instance=None) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(assets=list(assets), asset_checks=list(checks),
                          resources={"warehouse": WarehouseResource()})  # fmt: skip
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(instance=instance, raise_on_error=False)


def test_a_raw_shape_problem_warns_with_its_count_and_sample(quality_db: psycopg.Connection) -> None:  # noqa: F811
    land_world(quality_db, world(), systems=("amocrm",))
    ids = [r[0] for r in quality_db.execute("select id from raw_amocrm.leads order by id limit 2").fetchall()]
    quality_db.execute(
        "update raw_amocrm.leads set record = jsonb_set(record, '{price}', '-1000') where id = any(%s)",
        (ids,),
    )
    quality_db.commit()

    result = run_checks(raw_check("amocrm"))

    assert result.success, "a warning must not fail the run"
    found = evaluations(result)
    assert set(found) == {f"raw_amocrm/{e}" for e in ("leads", "pipelines", "loss_reasons", "events", "users",
                                                      "notes", "contacts", "companies")}  # fmt: skip
    leads = found["raw_amocrm/leads"]
    assert not leads.passed and leads.severity == dg.AssetCheckSeverity.WARN and leads.check_name == RAW_CHECK
    assert leads.metadata["unexpected_count"].value == 2
    sample = leads.metadata["sample"].value
    assert {row["id"] for row in sample} == set(ids)
    assert {row["record.price:number"] for row in sample} == {-1000.0}
    assert {row["broken"] for row in sample} == {"price is between 0 and 10 000 000 000"}
    assert "price is between 0 and" in leads.description
    table = leads.metadata["sample_table"].value
    assert table.startswith("| broken | record.price:number | connection_name | id |") and "-1000" in table
    others = [e for key, e in found.items() if key != "raw_amocrm/leads"]
    assert all(e.passed for e in others), [e.description for e in others if not e.passed]
    assert all(e.metadata["rows_checked"].value > 0 for e in others)


def test_a_megaplan_amount_below_zero_warns_on_its_deals(
    quality_db: psycopg.Connection,  # noqa: F811
    tmp_path: Path,
) -> None:
    land_more_sources(quality_db, tmp_path, systems=("megaplan",))
    ids = [
        r[0] for r in quality_db.execute("select id from raw_megaplan.deals order by id limit 2").fetchall()
    ]
    quality_db.execute(
        "update raw_megaplan.deals set record = jsonb_set(record, '{price,value}', '-250') where id = any(%s)",
        (ids,),
    )
    quality_db.commit()

    result = run_checks(raw_check("megaplan"))

    assert result.success, "a warning must not fail the run"
    found = evaluations(result)
    assert set(found) == {f"raw_megaplan/{e}" for e in ("deals", "programs", "program_states", "status_history",
                                                        "comments", "employees", "contractor_companies",
                                                        "deal_fields")}  # fmt: skip
    deals = found["raw_megaplan/deals"]
    assert not deals.passed and deals.severity == dg.AssetCheckSeverity.WARN
    assert deals.metadata["unexpected_count"].value == 2
    assert sorted(deals.metadata["sample"].value, key=lambda row: row["id"]) == [
        {"broken": "price.value is between 0 and 10 000 000 000", "record.price.value:number": -250.0,
         "connection_name": "megaplan_main", "id": i}
        for i in ids
    ]  # fmt: skip
    others = [e for key, e in found.items() if key != "raw_megaplan/deals"]
    assert all(e.passed and e.metadata["rows_checked"].value > 0 for e in others), [
        e.description for e in others
    ]


def test_a_system_with_no_connection_passes_with_no_data(quality_db: psycopg.Connection) -> None:  # noqa: F811
    result = run_checks(raw_check("bitrix24"))
    found = evaluations(result)
    assert len(found) == 10
    assert all(e.passed and e.description.startswith("no data:") for e in found.values())
    assert all(e.metadata["no_data"].value is True for e in found.values())


def digest_asset(out: Path) -> dg.AssetsDefinition:
    @dg.asset(key=["delivery", "digest"], deps=[["marts", "fct_deals"], ["marts", "dq_lost_deal_issues"]])
    def digest() -> None:
        """Downstream of the marts: what must not go out when a mart is wrong."""
        out.write_text("sent")

    return digest


def test_a_broken_mart_is_an_error_that_blocks_what_is_downstream(
    quality_db: psycopg.Connection,  # noqa: F811
    tmp_path: Path,
) -> None:
    build_good_marts(quality_db)
    quality_db.execute("update marts.fct_deals set status = 'closed' where deal_key = 'amo_retail:2'")
    quality_db.commit()
    sent = tmp_path / "digest"

    result = run_checks(*build_mart_checks(MART_SUITES), assets=[marts_as_built, digest_asset(sent)])

    assert not result.success
    assert not sent.exists(), "the digest went out with a broken mart"
    found = evaluations(result)
    deals = found["marts/fct_deals"]
    assert (
        not deals.passed and deals.severity == dg.AssetCheckSeverity.ERROR and deals.check_name == MART_CHECK
    )
    assert deals.metadata["unexpected_count"].value == 1
    assert deals.metadata["sample"].value == [
        {"broken": "status is open, won or lost", "status": "closed", "deal_key": "amo_retail:2"}
    ]
    assert all(e.passed for key, e in found.items() if key != "marts/fct_deals")
    built = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["marts", "fct_deals"]) in built and dg.AssetKey(["delivery", "digest"]) not in built


def test_good_marts_let_what_is_downstream_go(quality_db: psycopg.Connection, tmp_path: Path) -> None:  # noqa: F811
    build_good_marts(quality_db)
    sent = tmp_path / "digest"
    result = run_checks(*build_mart_checks(MART_SUITES), assets=[marts_as_built, digest_asset(sent)])
    assert result.success
    assert sent.read_text() == "sent"
    found = evaluations(result)
    assert len(found) == len(MART_SUITES) and all(e.passed for e in found.values())
    assert all(e.metadata["rows_checked"].value > 0 for e in found.values())


def test_mart_checks_follow_the_marts_dbt_builds() -> None:
    (check,) = build_mart_checks(["fct_deals", "rpt_loss_by_stage", "dim_customers"])
    assert {k.asset_key.to_user_string() for k in check.check_keys} == {
        "marts/fct_deals",
        "marts/rpt_loss_by_stage",
    }
    assert all(spec.blocking for spec in check.check_specs)
    assert build_mart_checks([]) == []


def test_the_checks_guard_the_assets_of_the_project(dbt_manifest: Path) -> None:
    from dagster_project import definitions
    from dagster_project.defs.extract.assets import extract_assets
    from dagster_project.defs.quality import checks, sensors
    from dagster_project.defs.quality.checks import dbt_marts

    project = definitions.defs
    if not any(k.name == RAW_CHECK for k in project.resolve_asset_graph().asset_check_keys):
        project = dg.Definitions.merge(project, checks.defs, sensors.defs)
    graph = project.resolve_asset_graph()
    built = graph.materializable_asset_keys
    ours = [k for k in graph.asset_check_keys if k.name in (RAW_CHECK, MART_CHECK)]
    raw = [k for k in ours if k.name == RAW_CHECK]
    marts = [k for k in ours if k.name == MART_CHECK]
    landed = {key for asset in extract_assets for key in asset.keys}
    assert {k.asset_key for k in raw} == landed, "every raw table an extract asset lands has its suite"
    assert len(raw) == 56 and len(marts) == len(set(MART_SUITES) & dbt_marts(str(dbt_manifest)))
    assert all(k.asset_key in built for k in ours), "a check guards an asset nothing builds"
    refresh = project.resolve_job_def("warehouse_refresh")
    assert {k for k in ours} <= set(refresh.asset_layer.asset_graph.asset_check_keys)
    for name in ("run_failure_alerts", "failed_check_alerts"):
        assert project.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
