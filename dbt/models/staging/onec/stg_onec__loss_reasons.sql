with

source as (
    select * from {{ source('raw_onec', 'loss_reasons') }}
),

renamed as (
    select
        connection_name as source_name,
        id as loss_reason_id,
        record ->> 'Description' as loss_reason_name,
        nullif(record ->> 'Описание', '') as loss_reason_description,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
