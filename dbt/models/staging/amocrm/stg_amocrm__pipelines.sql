with

source as (
    select * from {{ source('raw_amocrm', 'pipelines') }}
),

renamed as (
    select
        connection_name as source_name,
        id as pipeline_id,
        record ->> 'name' as pipeline_name,
        (record ->> 'sort')::integer as pipeline_sort,
        coalesce((record ->> 'is_main')::boolean, false) as is_main,
        coalesce((record ->> 'is_archive')::boolean, false) as is_archived,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
