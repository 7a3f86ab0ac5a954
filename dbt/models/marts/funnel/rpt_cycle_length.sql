{#- Month of the close (funnel.yaml's timezone) x source x pipeline x manager x outcome: how
    long won and lost deals lived from creation to close, in days. -#}
with

closed as (
    select * from {{ ref('fct_deals') }}
    where status in ('won', 'lost')
),

by_group as (
    select
        closed_month,
        source_name,
        pipeline_name,
        manager_key,
        status,
        count(*) as deals,
        round(avg(cycle_days), 4) as avg_cycle_days,
        round((percentile_cont(0.5) within group (order by cycle_days))::numeric, 4) as median_cycle_days,
        min(cycle_days) as min_cycle_days,
        max(cycle_days) as max_cycle_days,
        coalesce(sum(amount_base), 0) as amount_base
    from closed
    group by closed_month, source_name, pipeline_name, manager_key, status
)

select
    by_group.closed_month,
    by_group.source_name,
    by_group.pipeline_name,
    by_group.manager_key,
    managers.manager_name,
    by_group.status,
    by_group.deals,
    by_group.avg_cycle_days,
    by_group.median_cycle_days,
    by_group.min_cycle_days,
    by_group.max_cycle_days,
    by_group.amount_base
from by_group
left join {{ ref('dim_managers') }} as managers
    on by_group.manager_key = managers.manager_key
