{#- Creatio's opportunity stages: one lookup for the whole site. End (final) and Successful
    say what a stage means: final and successful is won, final and not successful is lost. -#}
with

source as (
    select * from {{ source('raw_creatio', 'stages') }}
),

renamed as (
    select
        connection_name as source_name,
        lower(id) as stage_id,
        record ->> 'Name' as stage_name,
        (record ->> 'Number')::integer as stage_number,
        coalesce((record ->> 'End')::boolean, false) as is_final,
        coalesce((record ->> 'Successful')::boolean, false) as is_successful,
        (record ->> 'MaxProbability')::integer as max_probability,
        coalesce((record ->> 'ShowInFunnel')::boolean, false) as is_shown_in_funnel,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
