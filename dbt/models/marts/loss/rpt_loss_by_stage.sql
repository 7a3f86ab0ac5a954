{#- Month of the loss (funnel.yaml's timezone) x the canonical stage the deals were lost at:
    how many deals and how much money, and their shares of the month's losses. -#}
with

lost as (
    select * from {{ ref('fct_lost_deals') }}
),

by_stage as (
    select
        closed_month as loss_month,
        coalesce(lost_at_canonical_stage, 'unknown') as lost_at_canonical_stage,
        count(*) as lost_deals,
        coalesce(sum(amount_base), 0) as lost_amount_base
    from lost
    group by closed_month, coalesce(lost_at_canonical_stage, 'unknown')
)

select
    by_stage.loss_month,
    by_stage.lost_at_canonical_stage,
    stage_list.stage_name as lost_at_stage_name,
    stage_list.stage_position as lost_at_stage_position,
    by_stage.lost_deals,
    round(
        by_stage.lost_deals::numeric / sum(by_stage.lost_deals) over (partition by by_stage.loss_month), 6
    )::numeric(9, 6) as lost_deals_share,
    by_stage.lost_amount_base,
    round(
        by_stage.lost_amount_base
        / nullif(sum(by_stage.lost_amount_base) over (partition by by_stage.loss_month), 0),
        6
    )::numeric(9, 6) as lost_amount_share
from by_stage
left join {{ ref('dim_stages') }} as stage_list
    on by_stage.lost_at_canonical_stage = stage_list.stage_code
