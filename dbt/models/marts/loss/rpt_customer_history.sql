{#- One row per customer: how long the relationship has lasted (from the first deal's
    creation to the latest close), what was won and lost, and how long the work took. -#}
with

deals as (
    select * from {{ ref('fct_deals') }}
    where customer_key is not null
),

history as (
    select
        customer_key,
        min(created_at) as first_deal_at,
        max(created_at) as last_deal_at,
        max(closed_at) as last_closed_at,
        count(*) as deals,
        count(*) filter (where status = 'won') as won_deals,
        count(*) filter (where status = 'lost') as lost_deals,
        count(*) filter (where status = 'open') as open_deals,
        round(avg(cycle_days) filter (where status = 'won'), 4) as avg_cycle_days_won,
        round(avg(cycle_days) filter (where status = 'lost'), 4) as avg_cycle_days_lost,
        coalesce(sum(amount_base) filter (where status = 'won'), 0) as won_amount_base,
        coalesce(sum(amount_base) filter (where status = 'lost'), 0) as lost_amount_base,
        count(distinct source_name) as source_count,
        string_agg(distinct source_name, ', ') as source_names
    from deals
    group by customer_key
)

select
    history.customer_key,
    customers.customer_name,
    customers.inn,
    history.first_deal_at,
    history.last_deal_at,
    history.last_closed_at,
    round(extract(epoch from history.last_closed_at - history.first_deal_at) / 86400.0, 4) as relationship_days,
    history.deals,
    history.won_deals,
    history.lost_deals,
    history.open_deals,
    history.won_deals > 0 as has_won_deals,
    history.avg_cycle_days_won,
    history.avg_cycle_days_lost,
    history.won_amount_base,
    history.lost_amount_base,
    history.source_count,
    history.source_names
from history
left join {{ ref('dim_customers') }} as customers
    on history.customer_key = customers.customer_key
