with

source as (
    select * from {{ source('config', 'loss_reasons') }}
),

renamed as (
    select
        reason_code,
        reason_name,
        reason_position::integer as reason_position,
        reactivate_after_days::integer as reactivate_after_days,
        needs_review as is_review_needed
    from source
)

select * from renamed
