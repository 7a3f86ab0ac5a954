with

source as (
    select * from {{ source('raw_onec', 'currencies') }}
),

renamed as (
    select
        connection_name as source_name,
        id as currency_id,
        record ->> 'Code' as currency_numeric_code,
        record ->> 'Description' as currency_short_name,
        {{ iso_currency_code("record ->> 'Code'", "record ->> 'Description'") }} as currency_code,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
