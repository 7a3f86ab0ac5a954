with

source as (
    select * from {{ source('config', 'reason_mappings') }}
),

renamed as (
    select
        source_name,
        source_reason,
        reason_code
    from source
)

select * from renamed
