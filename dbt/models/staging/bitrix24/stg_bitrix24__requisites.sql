with

source as (
    select * from {{ source('raw_bitrix24', 'requisites') }}
),

renamed as (
    select
        connection_name as source_name,
        id as requisite_id,
        (record ->> 'ENTITY_TYPE_ID')::integer as entity_type_id,
        record ->> 'ENTITY_ID' as entity_id,
        nullif(trim(record ->> 'RQ_INN'), '') as inn_raw,
        nullif(trim(record ->> 'RQ_KPP'), '') as kpp,
        record ->> 'RQ_COMPANY_NAME' as company_name,
        nullif(record ->> 'SORT', '')::integer as requisite_sort,
        coalesce(record ->> 'ACTIVE' is null or {{ bitrix24_flag("record ->> 'ACTIVE'") }}, true) as is_active,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
