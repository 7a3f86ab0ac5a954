{#- The statuses embedded in each pipeline record: one row per (pipeline, status). Status ids
    142 (won) and 143 (lost) repeat in every pipeline, so the key is the pair. -#}
with

source as (
    select * from {{ source('raw_amocrm', 'pipelines') }}
),

statuses as (
    select
        source.connection_name,
        source.id,
        source.loaded_at,
        status.value as status
    from source
    cross join lateral jsonb_array_elements(coalesce(source.record #> '{_embedded,statuses}', '[]'::jsonb)) as status
    where not source.is_deleted
),

renamed as (
    select
        connection_name as source_name,
        id as pipeline_id,
        status ->> 'id' as status_id,
        status ->> 'name' as status_name,
        (status ->> 'sort')::integer as status_sort,
        (status ->> 'type')::integer as status_type,
        loaded_at
    from statuses
)

select * from renamed
