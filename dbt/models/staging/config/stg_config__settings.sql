with

source as (
    select * from {{ source('config', 'settings') }}
),

renamed as (
    select
        timezone,
        base_currency,
        unmapped_reason as unmapped_reason_code,
        lost_too_fast_minutes::numeric as lost_too_fast_minutes,
        comment_min_chars::integer as comment_min_chars
    from source
)

select * from renamed
