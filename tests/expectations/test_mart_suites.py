"""The mart suites pass on marts that keep their invariants and fail, as errors, with the
count and the offending rows, on marts broken on purpose."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from expectations.marts import MART_SUITES
from expectations.runner import Failure, Outcome, run_suite
from tests.expectations.support import build_good_marts, quality_database_url, reset_schemas  # noqa: F401


@pytest.fixture(scope="module")
def marts(quality_database_url: str) -> Iterator[psycopg.Connection]:  # noqa: F811
    reset_schemas(quality_database_url)
    with psycopg.connect(quality_database_url) as conn:
        build_good_marts(conn)
        yield conn


@pytest.fixture
def db(marts: psycopg.Connection) -> Iterator[psycopg.Connection]:
    yield marts
    marts.rollback()


def run(db: psycopg.Connection, model: str) -> Outcome:
    outcome = run_suite(db, MART_SUITES[model])
    assert outcome.severity == "error"
    return outcome


def failure(outcome: Outcome, meaning: str) -> Failure:
    found = [f for f in outcome.failures if f.meaning == meaning]
    assert found, f"expected a failure {meaning!r}, got: {outcome.describe()}"
    return found[0]


def only(outcome: Outcome, *meanings: str) -> None:
    assert sorted(f.meaning for f in outcome.failures) == sorted(meanings), outcome.describe()


def test_every_mart_suite_passes_on_marts_that_keep_their_invariants(db: psycopg.Connection) -> None:
    for model, suite in MART_SUITES.items():
        outcome = run_suite(db, suite)
        assert outcome.success, outcome.describe()
        assert outcome.rows_checked > 0 and outcome.expectations >= 3, model


def test_fct_deals_with_an_unknown_status_and_negative_money(db: psycopg.Connection) -> None:
    db.execute("update marts.fct_deals set status = 'closed' where deal_key = 'amo_retail:2'")
    db.execute("update marts.fct_deals set amount_base = -200 where deal_key = 'erp:6'")
    outcome = run(db, "fct_deals")
    only(outcome, "status is open, won or lost", "amount_base is not negative")
    status = failure(outcome, "status is open, won or lost")
    assert status.unexpected_count == 1
    assert status.sample == [{"status": "closed", "deal_key": "amo_retail:2"}]
    money = failure(outcome, "amount_base is not negative")
    assert money.unexpected_count == 1 and money.sample == [{"amount_base": -200.0, "deal_key": "erp:6"}]


def test_fct_deals_with_a_duplicate_deal(db: psycopg.Connection) -> None:
    db.execute("insert into marts.fct_deals select * from marts.fct_deals where deal_key = 'erp:5'")
    outcome = run(db, "fct_deals")
    only(outcome, "deal_key is unique")
    assert failure(outcome, "deal_key is unique").unexpected_count == 2


def test_lost_deals_that_do_not_resolve_or_are_not_lost(db: psycopg.Connection) -> None:
    db.execute("update marts.fct_lost_deals set deal_key = 'amo_retail:999' where deal_key = 'amo_retail:3'")
    db.execute("update marts.fct_deals set status = 'won' where deal_key = 'erp:5'")
    outcome = run(db, "fct_lost_deals")
    only(outcome, "deal_key resolves in fct_deals", "the deal is lost in fct_deals")
    orphan = failure(outcome, "deal_key resolves in fct_deals")
    assert orphan.unexpected_count == 1 and orphan.sample == [
        {"in_fct_deals": False, "deal_key": "amo_retail:999"}
    ]
    won = failure(outcome, "the deal is lost in fct_deals")
    assert won.unexpected_count == 1 and won.sample == [{"status_in_fct_deals": "won", "deal_key": "erp:5"}]


def test_stage_transitions_of_unknown_deals_and_negative_time(db: psycopg.Connection) -> None:
    db.execute("update marts.fct_stage_transitions set deal_key = 'erp:404' where to_stage = 'Договор'")
    db.execute("update marts.fct_stage_transitions set hours_in_from_stage = -3 where to_stage = 'КП'")
    outcome = run(db, "fct_stage_transitions")
    only(outcome, "deal_key resolves in fct_deals", "hours_in_from_stage is not negative")
    orphan = failure(outcome, "deal_key resolves in fct_deals")
    assert orphan.unexpected_count == 1 and orphan.sample[0]["deal_key"] == "erp:404"
    hours = failure(outcome, "hours_in_from_stage is not negative")
    assert hours.unexpected_count == 1 and hours.sample[0]["deal_key"] == "amo_retail:3"


@pytest.mark.parametrize("model", ["rpt_loss_by_stage", "rpt_loss_by_reason"])
def test_loss_shares_that_do_not_sum_to_one_in_a_month(db: psycopg.Connection, model: str) -> None:
    db.execute(f"update marts.{model} set lost_deals_share = 0.75 where month = '2026-09-01'")
    outcome = run(db, model)
    only(outcome, "lost_deals_share sums to 1 in every month")
    f = failure(outcome, "lost_deals_share sums to 1 in every month")
    september = db.execute(f"select count(*) from marts.{model} where month = '2026-09-01'").fetchone()[0]
    assert f.unexpected_count == september
    assert {(row["month"], row["lost_deals_share_month_total"]) for row in f.sample} == {
        ("2026-09-01", 0.75 * september)
    }


def test_a_share_above_one(db: psycopg.Connection) -> None:
    db.execute(
        "update marts.rpt_loss_by_stage set lost_amount_share = 1.5 where canonical_stage = 'contract'"
    )
    outcome = run(db, "rpt_loss_by_stage")
    only(outcome, "lost_amount_share is within [0, 1]", "lost_amount_share sums to 1 in every month")
    f = failure(outcome, "lost_amount_share is within [0, 1]")
    assert f.unexpected_count == 1
    assert f.sample == [{"lost_amount_share": 1.5, "month": "2026-09-01", "canonical_stage": "contract"}]


def test_manager_losses_that_exceed_closed_deals_and_shares_off(db: psycopg.Connection) -> None:
    db.execute("update marts.rpt_loss_by_manager set lost_deals = 3 where manager_key = 'm01'")
    db.execute("update marts.rpt_loss_by_manager set share_of_all_losses = 0.5 where month = '2026-10-01'")
    outcome = run(db, "rpt_loss_by_manager")
    only(outcome, "lost_deals is at most closed_deals", "share_of_all_losses sums to 1 in every month")
    over = failure(outcome, "lost_deals is at most closed_deals")
    assert over.unexpected_count == 1 and over.sample[0]["manager_key"] == "m01"
    off = failure(outcome, "share_of_all_losses sums to 1 in every month")
    assert off.unexpected_count == 1 and off.sample[0]["month"] == "2026-10-01"


def test_conversion_above_one_and_more_reaching_the_next_stage(db: psycopg.Connection) -> None:
    db.execute("update marts.rpt_funnel_conversion set reached_next_stage = 12, conversion_rate = 1.2 "
               "where canonical_stage = 'new' and week = '2026-W35'")  # fmt: skip
    outcome = run(db, "rpt_funnel_conversion")
    only(outcome, "conversion_rate is within [0, 1]", "reached_next_stage is at most reached_stage")
    f = failure(outcome, "conversion_rate is within [0, 1]")
    assert f.unexpected_count == 1 and f.sample[0]["week"] == "2026-W35"


def test_customer_history_with_negative_counts(db: psycopg.Connection) -> None:
    db.execute("update marts.rpt_customer_history set won_deals = -1 where customer_key = 'inn:7707654321'")
    outcome = run(db, "rpt_customer_history")
    only(outcome, "won_deals is not negative")
    assert failure(outcome, "won_deals is not negative").sample == [
        {"won_deals": -1, "customer_key": "inn:7707654321"}
    ]


def test_issues_of_unknown_type_and_open_issues_of_unknown_deals(db: psycopg.Connection) -> None:
    db.execute(
        "update marts.dq_lost_deal_issues set issue_type = 'bad_mood' where issue_type = 'lost_too_fast'"
    )
    db.execute("update marts.dq_lost_deal_issues set deal_key = 'erp:404', resolved_at = null "
               "where deal_key = 'erp:5'")  # fmt: skip
    outcome = run(db, "dq_lost_deal_issues")
    kinds = (
        "issue_type is one of missing_reason, unknown_reason, missing_comment, skipped_conditional_refusal, "
        "lost_too_fast, reason_needs_review"
    )
    only(outcome, kinds, "deal_key resolves in fct_deals (open issues)")
    assert failure(outcome, kinds).sample == [{"issue_type": "bad_mood", "deal_key": "amo_retail:3"}]
    orphan = failure(outcome, "deal_key resolves in fct_deals (open issues)")
    assert orphan.unexpected_count == 1 and orphan.sample[0]["deal_key"] == "erp:404"


def test_a_mart_without_a_contract_column_is_a_problem(db: psycopg.Connection) -> None:
    db.execute("alter table marts.fct_deals drop column status")
    outcome = run(db, "fct_deals")
    assert not outcome.success and outcome.problem is not None
    assert "status" in outcome.problem


def test_a_monthly_report_without_a_month_is_a_problem(db: psycopg.Connection) -> None:
    db.execute("alter table marts.rpt_loss_by_reason rename column month to loss_month")
    assert run(db, "rpt_loss_by_reason").success  # another name for the month is fine
    db.execute("alter table marts.rpt_loss_by_reason rename column loss_month to when_lost")
    outcome = run(db, "rpt_loss_by_reason")
    assert outcome.problem is not None and "month (one of month" in outcome.problem


def test_a_mart_not_built_yet_passes_with_no_data(db: psycopg.Connection) -> None:
    db.execute("drop table marts.rpt_customer_history")
    outcome = run(db, "rpt_customer_history")
    assert outcome.success and outcome.no_data


def test_a_mart_whose_deals_table_is_missing_is_a_problem(db: psycopg.Connection) -> None:
    db.execute("drop table marts.fct_deals")
    outcome = run(db, "fct_lost_deals")
    assert outcome.problem == "cannot be checked: marts.fct_deals does not exist"
