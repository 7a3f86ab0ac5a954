{#- The stage's result enumeration is the installation's own numbers; the extractor read it as
    open / won / lost through the connection's stage_results (stage_status). -#}
with

source as (
    select * from {{ source('raw_rosbiznessoft', 'stages') }}
),

renamed as (
    select
        connection_name as source_name,
        id as stage_id,
        nullif(record -> 'values' ->> 'stage_name', '') as stage_name,
        nullif(record -> 'values' ->> 'stage_pipeline', '') as pipeline_id,
        nullif(record -> 'values' ->> 'stage_sort', '')::numeric::integer as stage_sort,
        nullif(record -> 'values' ->> 'stage_result', '') as stage_result_raw,
        record -> 'values' ->> 'stage_status' as stage_status,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
