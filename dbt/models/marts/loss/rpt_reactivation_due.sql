{#- The refusal funnel: lost deals whose reason is deferrable (reactivate_after_days) and
    whose customer is due for a new contact — the due day has come and the customer has no
    deal created since the loss. -#}
with

lost as (
    select * from {{ ref('fct_lost_deals') }}
    where reactivate_after_days is not null
),

funnel_settings as (
    select * from {{ ref('stg_config__settings') }}
),

candidates as (
    select
        lost.*,
        (lost.closed_at at time zone funnel_settings.timezone)::date + lost.reactivate_after_days as due_on,
        ({{ as_of_timestamp() }} at time zone funnel_settings.timezone)::date as as_of_date
    from lost
    cross join funnel_settings
)

select
    candidates.deal_key,
    candidates.source_name,
    candidates.deal_name,
    candidates.customer_key,
    candidates.customer_name,
    candidates.loss_reason_code,
    candidates.loss_reason_name,
    candidates.loss_comment,
    candidates.closed_at as lost_at,
    candidates.due_on,
    candidates.as_of_date - candidates.due_on as days_overdue,
    candidates.amount_base,
    candidates.manager_key,
    candidates.manager_name,
    candidates.crm_url
from candidates
where
    candidates.due_on <= candidates.as_of_date
    and not exists (
        select 1
        from {{ ref('fct_deals') }} as later
        where
            later.customer_key = candidates.customer_key
            and later.created_at > candidates.closed_at
    )
