with

source as (
    select * from {{ source('raw_bitrix24', 'timeline_comments') }}
),

renamed as (
    select
        connection_name as source_name,
        id as comment_id,
        record ->> 'ENTITY_ID' as deal_id,
        lower(record ->> 'ENTITY_TYPE') as entity_type,
        record ->> 'COMMENT' as comment_text,
        {{ bitrix24_ref("record ->> 'AUTHOR_ID'") }} as author_user_id,
        {{ bitrix24_timestamp("record ->> 'CREATED'") }} as created_at,
        loaded_at
    from source
    where
        not is_deleted
        and lower(coalesce(record ->> 'ENTITY_TYPE', 'deal')) = 'deal'
)

select * from renamed
