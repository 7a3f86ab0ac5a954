{#- The items of enumeration fields (crm.deal.fields "items"): one row per (field, item). -#}
with

source as (
    select * from {{ source('raw_bitrix24', 'deal_fields') }}
),

items as (
    select
        source.connection_name,
        source.id,
        source.loaded_at,
        item.value as item
    from source
    cross join
        lateral jsonb_array_elements(
            case
                when jsonb_typeof(source.record -> 'items') = 'array' then source.record -> 'items' else '[]'::jsonb
            end
        ) as item
    where not source.is_deleted
),

renamed as (
    select
        connection_name as source_name,
        id as field_name,
        item ->> 'ID' as item_id,
        item ->> 'VALUE' as item_value,
        loaded_at
    from items
)

select * from renamed
