{#- A row per stage change from the history files: the deal entered stage_name at
    changed_at_local (the export's local time). -#}
with

source as (
    select * from {{ source('raw_file', 'stage_history') }}
),

renamed as (
    select
        connection_name as source_name,
        id as change_id,
        record -> 'values' ->> 'deal_id' as deal_id,
        record -> 'values' ->> 'pipeline' as pipeline_name,
        record -> 'values' ->> 'stage' as stage_name,
        record -> 'values' ->> 'manager' as manager_name,
        (record -> 'values' ->> 'changed_at')::timestamp as changed_at_local,
        record ->> 'file' as file_name,
        (record ->> 'row_number')::integer as row_number,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
