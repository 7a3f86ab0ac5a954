"""Dashboard query latency on the marts, through the BI role over TCP.

    .venv/bin/python -m benchmarks.bi_latency [--rounds 5]

Twenty queries a loss dashboard sends (filters by month, manager, pipeline; grouped by stage,
reason, manager, status), run as the BI role (``dwh.warehouse.bi_credentials()``) on
127.0.0.1, against whatever the benchmark warehouse's marts hold (build them first with
``python -m benchmarks.scale``). Filter values are drawn from the data itself: the latest
complete month, the manager and the pipeline with the most deals. One warm-up round, then
``--rounds`` timed rounds; the figures are p50 and p95 over every timed execution, and each
query's median.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import psycopg

from benchmarks import common

QUERIES: dict[str, str] = {
    "lost deals by reason, one month": """
        select loss_reason_name, count(*) as deals, sum(amount_base) as amount
        from marts.fct_lost_deals where closed_month = %(month)s group by 1 order by 2 desc""",
    "lost deals by stage, one month, one pipeline": """
        select lost_at_canonical_stage, lost_at_stage, count(*), sum(amount_base)
        from marts.fct_lost_deals where closed_month = %(month)s and lost_at_pipeline_name = %(pipeline)s
        group by 1, 2 order by 3 desc""",
    "loss by manager, last 3 months (report)": """
        select manager_name, sum(lost_deals), sum(won_deals), sum(lost_amount_base)
        from marts.rpt_loss_by_manager where loss_month > %(month)s::date - interval '3 months'
        group by 1 order by 2 desc""",
    "loss by reason, 12-month trend (report)": """
        select loss_month, loss_reason_code, lost_deals, lost_amount_base
        from marts.rpt_loss_by_reason where loss_month > %(month)s::date - interval '12 months'
        order by 1, 2""",
    "loss by stage, 12-month trend (report)": """
        select loss_month, lost_at_canonical_stage, lost_deals, lost_deals_share
        from marts.rpt_loss_by_stage where loss_month > %(month)s::date - interval '12 months' order by 1, 2""",
    "funnel conversion of one manager (report)": """
        select week_start, canonical_stage, reached_stage, reached_next_stage, conversion_rate, target_rate
        from marts.rpt_funnel_conversion where manager_key = %(manager)s order by 1, stage_position""",
    "deals by status per month, one pipeline": """
        select created_month, status, count(*), sum(amount_base)
        from marts.fct_deals where pipeline_name = %(pipeline)s group by 1, 2 order by 1, 2""",
    "lost amount by reason and manager, one quarter": """
        select manager_name, loss_reason_name, count(*), sum(amount_base)
        from marts.fct_lost_deals where closed_month > %(month)s::date - interval '3 months'
          and closed_month <= %(month)s group by 1, 2 order by 4 desc nulls last""",
    "largest lost deals of a month": """
        select deal_name, manager_name, customer_name, amount_base, loss_reason_name, loss_comment, crm_url
        from marts.fct_lost_deals where closed_month = %(month)s order by amount_base desc nulls last limit 20""",
    "stage transitions per month by target stage (report)": """
        select transitioned_month, to_canonical_stage, sum(transitions)
        from marts.rpt_stage_transitions_by_month where transitioned_month > %(month)s::date - interval '6 months'
        group by 1, 2 order by 1, 2""",
    "hours in stage by stage, one manager, one month": """
        select from_canonical_stage, count(*), avg(hours_in_from_stage),
               percentile_cont(0.5) within group (order by hours_in_from_stage)
        from marts.fct_stage_transitions where manager_key = %(manager)s and transitioned_month = %(month)s
        group by 1""",
    "backward moves per manager, one month (report)": """
        select manager_key, sum(backward_transitions), sum(transitions)
        from marts.rpt_stage_transitions_by_month where transitioned_month = %(month)s group by 1 order by 2 desc""",
    "cycle length by pipeline (report)": """
        select pipeline_name, status, sum(deals), avg(avg_cycle_days)
        from marts.rpt_cycle_length where closed_month > %(month)s::date - interval '6 months' group by 1, 2""",
    "time in stage, one month (report)": """
        select canonical_stage, manager_name, stays, avg_days_in_stage, over_limit_share, stuck_now
        from marts.rpt_stage_time where entered_month = %(month)s order by stage_position, manager_name""",
    "open deals by stage, one manager": """
        select canonical_stage, count(*), sum(amount_base), min(current_stage_entered_at)
        from marts.fct_deals where status = 'open' and manager_key = %(manager)s group by 1""",
    "conditional refusal share per month": """
        select closed_month, count(*) filter (where passed_conditional_refusal)::numeric / count(*)
        from marts.fct_deals where status = 'lost' and closed_month is not null group by 1 order by 1""",
    "lost deals of one manager in a month, with comments": """
        select deal_number, deal_name, lost_at_stage, loss_reason_name, loss_comment, amount_base, crm_url
        from marts.fct_lost_deals where manager_key = %(manager)s and closed_month = %(month)s
        order by closed_at desc limit 100""",
    "win rate by source per month (report)": """
        select source_name, closed_month, sum(deals) filter (where status = 'won')::numeric / sum(deals)
        from marts.rpt_cycle_length where closed_month > %(month)s::date - interval '12 months'
        group by 1, 2 order by 1, 2""",
    "furthest stage reached, one pipeline, one quarter of creation": """
        select furthest_canonical_stage, count(*)
        from marts.fct_deals where pipeline_name = %(pipeline)s
          and created_month > %(month)s::date - interval '3 months' and created_month <= %(month)s
        group by 1 order by 1""",
    "customers with the most lost deals, one quarter": """
        select customer_name, count(*), sum(amount_base), max(customer_won_deals_before)
        from marts.fct_lost_deals where closed_month > %(month)s::date - interval '3 months'
          and customer_key is not null group by 1 order by 2 desc limit 20""",
}


def parameters(conn: psycopg.Connection) -> dict[str, Any]:
    month = conn.execute(
        "select max(closed_month) - interval '1 month' from marts.fct_deals where closed_month is not null"
    ).fetchone()[0]
    manager = conn.execute(
        "select manager_key from marts.fct_deals where manager_key is not null group by 1 order by count(*) desc limit 1"
    ).fetchone()[0]
    pipeline = conn.execute(
        "select pipeline_name from marts.fct_deals group by 1 order by count(*) desc limit 1"
    ).fetchone()[0]
    return {
        "month": month.date() if hasattr(month, "date") else month,
        "manager": manager,
        "pipeline": pipeline,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * share
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    common.banner("BI query latency")
    common.use_private_warehouse()
    facts = common.machine_facts()
    from dwh.warehouse import bi_credentials, target

    user, password = bi_credentials()
    port = target().port
    with common.connect() as admin:
        deals = admin.execute("select count(*) from marts.fct_deals").fetchone()[0]
        transitions = admin.execute("select count(*) from marts.fct_stage_transitions").fetchone()[0]
        params = parameters(admin)
    print(f"marts: {deals:,} deals, {transitions:,} transitions; filters {params}", flush=True)

    timings: dict[str, list[float]] = {name: [] for name in QUERIES}
    rows_returned: dict[str, int] = {}
    with psycopg.connect(host="127.0.0.1", port=port, dbname=target().dbname, user=user, password=password,
                         autocommit=True) as conn:  # fmt: skip
        for round_ in range(args.rounds + 1):
            for name, query in QUERIES.items():
                started = time.perf_counter()
                rows = conn.execute(query, params).fetchall()
                elapsed = (time.perf_counter() - started) * 1000
                if round_ > 0:  # round 0 warms the caches, as a dashboard opened twice would
                    timings[name].append(elapsed)
                rows_returned[name] = len(rows)
    every = [t for values in timings.values() for t in values]
    p50, p95 = percentile(every, 0.5), percentile(every, 0.95)
    per_query = [[name, rows_returned[name], f"{statistics.median(v):.1f}", f"{max(v):.1f}"]
                 for name, v in timings.items()]  # fmt: skip
    print()
    print(common.table(["query", "rows", "median ms", "max ms"], per_query))
    print(f"\nall {len(every)} executions: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({common.load_note()})")
    result = {"benchmark": "bi_latency", "deals": deals, "transitions": transitions, "rounds": args.rounds,
              "parameters": params, "machine": facts, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
              "queries": {name: {"rows": rows_returned[name], "median_ms": round(statistics.median(v), 1),
                                 "max_ms": round(max(v), 1)} for name, v in timings.items()}}  # fmt: skip
    common.save(f"bi_latency_{deals}", result)
    return result


if __name__ == "__main__":
    main()
