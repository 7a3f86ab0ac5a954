{#- Month of the loss (funnel.yaml's timezone) x canonical loss reason: deals and money, and
    their shares of the month's losses. Lost deals without a reason are the row whose
    loss_reason_code is null. -#}
with

lost as (
    select * from {{ ref('fct_lost_deals') }}
),

by_reason as (
    select
        closed_month as loss_month,
        loss_reason_code,
        count(*) as lost_deals,
        coalesce(sum(amount_base), 0) as lost_amount_base,
        count(*) filter (where not is_loss_reason_mapped) as unmapped_reason_deals
    from lost
    group by closed_month, loss_reason_code
)

select
    by_reason.loss_month,
    by_reason.loss_reason_code,
    reasons.reason_name as loss_reason_name,
    by_reason.loss_reason_code is null as is_reason_missing,
    by_reason.lost_deals,
    round(
        by_reason.lost_deals::numeric / sum(by_reason.lost_deals) over (partition by by_reason.loss_month), 6
    )::numeric(9, 6) as lost_deals_share,
    by_reason.lost_amount_base,
    round(
        by_reason.lost_amount_base
        / nullif(sum(by_reason.lost_amount_base) over (partition by by_reason.loss_month), 0),
        6
    )::numeric(9, 6) as lost_amount_share,
    by_reason.unmapped_reason_deals
from by_reason
left join {{ ref('dim_loss_reasons') }} as reasons
    on by_reason.loss_reason_code = reasons.reason_code
