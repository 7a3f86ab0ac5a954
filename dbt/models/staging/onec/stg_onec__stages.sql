with

source as (
    select * from {{ source('raw_onec', 'stages') }}
),

renamed as (
    select
        connection_name as source_name,
        id as stage_id,
        record ->> 'Description' as stage_name,
        nullif(record ->> 'РеквизитДопУпорядочивания', '')::integer as stage_sort,
        nullif(record ->> 'PredefinedDataName', '') as predefined_name,
        coalesce((record ->> 'DeletionMark')::boolean, false) as is_marked_for_deletion,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
