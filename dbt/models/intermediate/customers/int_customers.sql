{#- One row per customer (customer_key). The name is that of the customer's earliest record
    (the first system that knew it). -#}
with

records as (
    select * from {{ ref('int_customers_unioned') }}
),

ranked as (
    select
        records.*,
        row_number() over (
            partition by records.customer_key
            order by records.created_at nulls last, records.source_name, records.customer_source_id
        ) as record_rank
    from records
)

select
    customer_key,
    max(case when record_rank = 1 then customer_name end) as customer_name,
    max(inn) as inn,
    bool_or(has_valid_inn) as has_valid_inn,
    max(case when record_rank = 1 then customer_kind end) as customer_kind,
    count(*) as source_record_count,
    string_agg(distinct source_name, ', ') as source_names,
    min(created_at) as first_seen_at
from ranked
group by customer_key
