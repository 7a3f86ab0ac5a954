with

source as (
    select * from {{ source('raw_rosbiznessoft', 'users') }}
),

renamed as (
    select
        connection_name as source_name,
        id as user_id,
        nullif(record -> 'values' ->> 'user_name', '') as user_name,
        nullif(record -> 'values' ->> 'user_email', '') as user_email,
        coalesce(record -> 'values' ->> 'user_active', '1') != '0' as is_active,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
