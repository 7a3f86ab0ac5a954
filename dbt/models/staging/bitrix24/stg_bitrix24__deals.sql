with

source as (
    select * from {{ source('raw_bitrix24', 'deals') }}
),

renamed as (
    select
        connection_name as source_name,
        id as deal_id,
        record ->> 'TITLE' as deal_title,
        coalesce(nullif(record ->> 'CATEGORY_ID', ''), '0') as category_id,
        record ->> 'STAGE_ID' as stage_id,
        record ->> 'STAGE_SEMANTIC_ID' as stage_semantic_id,
        nullif(record ->> 'CURRENCY_ID', '') as currency_id,
        nullif(record ->> 'OPPORTUNITY', '')::numeric(18, 2) as opportunity,
        {{ bitrix24_ref("record ->> 'COMPANY_ID'") }} as company_id,
        {{ bitrix24_ref("record ->> 'CONTACT_ID'") }} as contact_id,
        {{ bitrix24_ref("record ->> 'ASSIGNED_BY_ID'") }} as assigned_by_user_id,
        {{ bitrix24_ref("record ->> 'CREATED_BY_ID'") }} as created_by_user_id,
        {{ bitrix24_flag("record ->> 'CLOSED'") }} as is_closed,
        nullif(record ->> 'COMMENTS', '') as comments_text,
        {{ bitrix24_timestamp("record ->> 'DATE_CREATE'") }} as created_at,
        {{ bitrix24_timestamp("record ->> 'DATE_MODIFY'") }} as modified_at,
        {{ bitrix24_timestamp("record ->> 'BEGINDATE'") }} as begin_date_at,
        {{ bitrix24_timestamp("record ->> 'CLOSEDATE'") }} as close_date_at,
        {{ bitrix24_timestamp("record ->> 'MOVED_TIME'") }} as moved_at,
        -- the portal's own fields (UF_*) as [{"key": ..., "value": ...}]: which one holds the
        -- loss reason or the comment is configuration
        jsonb_path_query_array(record, '$.keyvalue() ? (@.key like_regex "^UF_")') as custom_fields,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
