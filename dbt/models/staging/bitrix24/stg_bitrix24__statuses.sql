{#- Deal stages only (ENTITY_ID DEAL_STAGE for the default funnel, DEAL_STAGE_<id> for the
    others); the other reference lists crm.status.list serves are left out. -#}
with

source as (
    select * from {{ source('raw_bitrix24', 'statuses') }}
),

renamed as (
    select
        connection_name as source_name,
        id as status_row_id,
        record ->> 'ENTITY_ID' as entity_id,
        case
            when record ->> 'ENTITY_ID' = 'DEAL_STAGE' then '0'
            else substr(record ->> 'ENTITY_ID', length('DEAL_STAGE_') + 1)
        end as category_id,
        record ->> 'STATUS_ID' as stage_id,
        record ->> 'NAME' as stage_name,
        nullif(record ->> 'SORT', '')::integer as stage_sort,
        -- P (in progress), S (success), F (failure)
        coalesce(
            nullif(record ->> 'SEMANTICS', ''),
            case record #>> '{EXTRA,SEMANTICS}'
                when 'success' then 'S'
                when 'failure' then 'F'
                when 'apology' then 'F'
            end,
            'P'
        ) as stage_semantic_id,
        loaded_at
    from source
    where
        not is_deleted
        and record ->> 'ENTITY_ID' like 'DEAL\_STAGE%'
)

select * from renamed
