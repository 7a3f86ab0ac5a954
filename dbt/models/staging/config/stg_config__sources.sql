with

source as (
    select * from {{ source('config', 'sources') }}
),

renamed as (
    select
        source_name,
        source_type as source_system,
        crm_base_url,
        source_timezone,
        conditional_refusal_stage,
        loss_reason_field,
        loss_reason_stages as has_loss_reason_stages,
        comment_field
    from source
)

select * from renamed
