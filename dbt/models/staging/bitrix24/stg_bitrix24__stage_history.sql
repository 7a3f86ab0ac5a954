with

source as (
    select * from {{ source('raw_bitrix24', 'stage_history') }}
),

renamed as (
    select
        connection_name as source_name,
        id as history_id,
        (record ->> 'ID')::bigint as history_sequence,
        (record ->> 'TYPE_ID')::integer as history_type_id,
        record ->> 'OWNER_ID' as deal_id,
        {{ bitrix24_timestamp("record ->> 'CREATED_TIME'") }} as created_at,
        coalesce(nullif(record ->> 'CATEGORY_ID', ''), '0') as category_id,
        record ->> 'STAGE_SEMANTIC_ID' as stage_semantic_id,
        record ->> 'STAGE_ID' as stage_id,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
