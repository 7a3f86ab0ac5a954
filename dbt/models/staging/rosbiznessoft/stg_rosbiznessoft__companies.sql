with

source as (
    select * from {{ source('raw_rosbiznessoft', 'companies') }}
),

renamed as (
    select
        connection_name as source_name,
        id as company_id,
        nullif(record -> 'values' ->> 'company_name', '') as company_name,
        nullif(record -> 'values' ->> 'company_manager', '') as manager_user_id,
        {{ rbs_local_timestamp("record -> 'values' ->> 'company_created'") }} as created_at_local,
        {{ rbs_local_timestamp("record -> 'values' ->> 'company_modified'") }} as modified_at_local,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
