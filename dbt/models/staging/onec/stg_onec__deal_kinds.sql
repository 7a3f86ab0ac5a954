with

source as (
    select * from {{ source('raw_onec', 'deal_kinds') }}
),

renamed as (
    select
        connection_name as source_name,
        id as deal_kind_id,
        record ->> 'Description' as deal_kind_name,
        record ->> 'ТипСделки' as deal_type,
        coalesce((record ->> 'DeletionMark')::boolean, false) as is_marked_for_deletion,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
