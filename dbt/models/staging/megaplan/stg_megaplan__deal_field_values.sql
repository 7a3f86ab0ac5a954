{#- The values an enumeration custom field offers, in order: one row per (field, value). -#}
with

source as (
    select * from {{ source('raw_megaplan', 'deal_fields') }}
),

field_values as (
    select
        source.connection_name,
        source.id,
        source.record,
        source.loaded_at,
        enum_value.value as enum_value,
        enum_value.ordinality as value_position
    from source
    cross join
        lateral jsonb_array_elements(
            case
                when jsonb_typeof(source.record -> 'enumValues') = 'array' then source.record -> 'enumValues'
                else '[]'::jsonb
            end
        ) with ordinality as enum_value (value, ordinality)
    where not source.is_deleted
),

renamed as (
    select
        connection_name as source_name,
        coalesce(record ->> 'name', id) as field_name,
        enum_value #>> '{}' as field_value,
        value_position::integer as value_position,
        loaded_at
    from field_values
)

select * from renamed
