{#- One row per lost deal: everything a loss analysis needs in one place. Stored in the order
    of the month of loss, so that a month's or a quarter's lost deals sit together on disk for
    the dashboards' month filters (with the indexes below; the last two hold what a quarter's
    totals by manager and reason, or by customer, group, so that those read the index only). -#}
{{
    config(
        indexes=[
            {'columns': ['closed_month', 'manager_key']},
            {'columns': ['manager_key', 'closed_month']},
            {'columns': ['closed_month', 'manager_name', 'loss_reason_name', 'amount_base']},
            {'columns': ['closed_month', 'customer_key', 'customer_name', 'amount_base', 'customer_won_deals_before']},
        ],
        post_hook=[
            {'sql': 'vacuum analyze {{ this }}', 'transaction': False},
        ],
    )
}}

with

deals as (
    select * from {{ ref('fct_deals') }}
),

lost as (
    select * from deals
    where status = 'lost'
),

won_before as (
    select
        lost.deal_key,
        count(won.deal_key) as customer_won_deals_before,
        coalesce(sum(won.amount_base), 0) as customer_won_amount_base_before
    from lost
    inner join deals as won
        on
            lost.customer_key = won.customer_key
            and won.status = 'won'
            and lost.closed_at > won.closed_at
    group by lost.deal_key
)

select
    lost.deal_key,
    lost.source_name,
    lost.source_system,
    lost.deal_id,
    lost.deal_number,
    lost.deal_name,
    lost.pipeline_name,
    lost.stage_name,
    lost.lost_at_pipeline_name,
    lost.lost_at_stage,
    lost.lost_at_canonical_stage,
    lost.passed_conditional_refusal,
    lost.skipped_conditional_refusal,
    lost.furthest_canonical_stage,
    lost.manager_key,
    lost.manager_name,
    lost.loss_reason_code,
    lost.loss_reason_name,
    lost.loss_reason_raw,
    lost.is_loss_reason_mapped,
    reasons.reactivate_after_days,
    reasons.is_review_needed as is_reason_review_needed,
    lost.loss_comment,
    length(trim(coalesce(lost.loss_comment, ''))) as loss_comment_length,
    lost.amount,
    lost.currency,
    lost.amount_base,
    lost.created_at,
    lost.closed_at,
    lost.closed_month,
    lost.cycle_days,
    round(extract(epoch from lost.closed_at - lost.created_at) / 60.0, 2) as minutes_to_loss,
    lost.customer_key,
    lost.customer_name,
    coalesce(won_before.customer_won_deals_before, 0) as customer_won_deals_before,
    coalesce(won_before.customer_won_amount_base_before, 0) as customer_won_amount_base_before,
    customers.relationship_days as customer_relationship_days,
    customers.first_deal_at as customer_first_deal_at,
    customers.deals as customer_deals,
    lost.crm_url
from lost
left join won_before
    on lost.deal_key = won_before.deal_key
left join {{ ref('rpt_customer_history') }} as customers
    on lost.customer_key = customers.customer_key
left join {{ ref('stg_config__loss_reasons') }} as reasons
    on lost.loss_reason_code = reasons.reason_code
order by lost.closed_month, lost.manager_key
