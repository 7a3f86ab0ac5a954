{#- A company's legal entities (юр. лица / реквизиты): where the INN lives. -#}
with

source as (
    select * from {{ source('raw_rosbiznessoft', 'company_details') }}
),

renamed as (
    select
        connection_name as source_name,
        id as details_id,
        nullif(record -> 'values' ->> 'details_company', '') as company_id,
        nullif(record -> 'values' ->> 'details_name', '') as legal_name,
        nullif(record -> 'values' ->> 'details_inn', '') as inn_raw,
        {{ normalized_inn("record -> 'values' ->> 'details_inn'") }} as inn,
        {{ rbs_local_timestamp("record -> 'values' ->> 'details_modified'") }} as modified_at_local,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
