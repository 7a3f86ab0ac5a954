with

source as (
    select * from {{ source('raw_bitrix24', 'deal_fields') }}
),

renamed as (
    select
        connection_name as source_name,
        id as field_name,
        record ->> 'type' as field_type,
        coalesce(nullif(record ->> 'listLabel', ''), record ->> 'title') as field_title,
        coalesce((record ->> 'isMultiple')::boolean, false) as is_multiple,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
