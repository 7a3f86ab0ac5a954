{#- One row per customer: a company known by its INN is one row across systems. -#}
with

deal_customers as (
    select
        customer_key,
        min(customer_name) as customer_name,
        count(*) as deals,
        min(created_at) as first_deal_at
    from {{ ref('fct_deals') }}
    where customer_key is not null
    group by customer_key
),

customers as (
    select
        customer_key,
        customer_name,
        inn,
        has_valid_inn,
        source_names,
        source_record_count,
        first_seen_at
    from {{ ref('int_customers') }}
    union all
    select
        deal_customers.customer_key,
        deal_customers.customer_name,
        null as inn,
        false as has_valid_inn,
        split_part(deal_customers.customer_key, ':', 1) as source_names,
        0 as source_record_count,
        null as first_seen_at
    from deal_customers
    where not exists (
        select 1
        from {{ ref('int_customers') }} as known
        where known.customer_key = deal_customers.customer_key
    )
)

select
    customers.customer_key,
    customers.customer_name,
    customers.inn,
    customers.has_valid_inn,
    customers.source_names,
    customers.source_record_count,
    customers.first_seen_at,
    coalesce(deal_customers.deals, 0) as deals,
    deal_customers.first_deal_at
from customers
left join deal_customers
    on customers.customer_key = deal_customers.customer_key
