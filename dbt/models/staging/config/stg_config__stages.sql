with

source as (
    select * from {{ source('config', 'stages') }}
),

renamed as (
    select
        stage_code,
        stage_name,
        stage_position::integer as stage_position,
        target_conversion::numeric as target_conversion,
        max_days::numeric as max_days,
        is_last as is_last_stage
    from source
)

select * from renamed
