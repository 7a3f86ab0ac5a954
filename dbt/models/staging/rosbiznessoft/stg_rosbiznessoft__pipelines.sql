with

source as (
    select * from {{ source('raw_rosbiznessoft', 'pipelines') }}
),

renamed as (
    select
        connection_name as source_name,
        id as pipeline_id,
        nullif(record -> 'values' ->> 'pipeline_name', '') as pipeline_name,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
