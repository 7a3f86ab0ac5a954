with

source as (
    select * from {{ source('raw_rosbiznessoft', 'loss_reasons') }}
),

renamed as (
    select
        connection_name as source_name,
        id as loss_reason_id,
        nullif(record -> 'values' ->> 'loss_reason_name', '') as loss_reason_name,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
