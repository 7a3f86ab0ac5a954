with

source as (
    select * from {{ source('raw_megaplan', 'programs') }}
),

renamed as (
    select
        connection_name as source_name,
        id as program_id,
        record ->> 'name' as program_name,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
