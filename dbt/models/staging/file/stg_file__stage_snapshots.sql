{#- What each load saw of a deal when it was new or had moved: without a history file, the
    only record of transitions. observed_at is the export file's modification time (an
    instant); the deal moved at some time between two observations, not necessarily at it. -#}
with

source as (
    select * from {{ source('raw_file', 'stage_snapshots') }}
),

renamed as (
    select
        connection_name as source_name,
        id as snapshot_id,
        record ->> 'deal_id' as deal_id,
        record ->> 'pipeline' as pipeline_name,
        record ->> 'stage' as stage_name,
        record ->> 'status' as status,
        (record ->> 'observed_at')::timestamptz as observed_at,
        record -> 'previous' ->> 'pipeline' as previous_pipeline_name,
        record -> 'previous' ->> 'stage' as previous_stage_name,
        record -> 'previous' ->> 'status' as previous_status,
        record ->> 'file' as file_name,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
