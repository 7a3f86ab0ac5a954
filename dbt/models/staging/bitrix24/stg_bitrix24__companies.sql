with

source as (
    select * from {{ source('raw_bitrix24', 'companies') }}
),

renamed as (
    select
        connection_name as source_name,
        id as company_id,
        record ->> 'TITLE' as company_name,
        {{ bitrix24_timestamp("record ->> 'DATE_CREATE'") }} as created_at,
        {{ bitrix24_timestamp("record ->> 'DATE_MODIFY'") }} as modified_at,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
