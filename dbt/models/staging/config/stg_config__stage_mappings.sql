with

source as (
    select * from {{ source('config', 'stage_mappings') }}
),

renamed as (
    select
        source_name,
        pipeline_name,
        source_stage_name,
        stage_code
    from source
)

select * from renamed
