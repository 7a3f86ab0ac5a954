with

source as (
    select * from {{ source('raw_creatio', 'close_reasons') }}
),

renamed as (
    select
        connection_name as source_name,
        lower(id) as close_reason_id,
        record ->> 'Name' as close_reason_name,
        nullif(record ->> 'Description', '') as description,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
