with

source as (
    select * from {{ source('raw_onec', 'exchange_rates') }}
),

renamed as (
    select
        connection_name as source_name,
        id as rate_id,
        {{ onec_ref("record ->> 'Валюта_Key'") }} as currency_id,
        {{ onec_local_timestamp("record ->> 'Period'") }}::date as rate_date,
        (record ->> 'Курс')::numeric as rate,
        coalesce(nullif((record ->> 'Кратность')::numeric, 0), 1) as multiplier,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
