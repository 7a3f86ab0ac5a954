with

source as (
    select * from {{ source('raw_amocrm', 'loss_reasons') }}
),

renamed as (
    select
        connection_name as source_name,
        id as loss_reason_id,
        record ->> 'name' as loss_reason_name,
        (record ->> 'sort')::integer as loss_reason_sort,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
