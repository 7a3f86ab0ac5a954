{#- The order of each program's states (its `states` list): a state record carries no sort
    of its own. One row per (program, state). -#}
with

source as (
    select * from {{ source('raw_megaplan', 'programs') }}
),

states as (
    select
        source.connection_name,
        source.id,
        source.loaded_at,
        state.value as state_link,
        state.ordinality as state_position
    from source
    cross join
        lateral jsonb_array_elements(
            case
                when jsonb_typeof(source.record -> 'states') = 'array' then source.record -> 'states'
                else '[]'::jsonb
            end
        ) with ordinality as state (value, ordinality)
    where not source.is_deleted
),

renamed as (
    select
        connection_name as source_name,
        id as program_id,
        state_link ->> 'id' as state_id,
        state_position::integer as state_position,
        loaded_at
    from states
)

select * from renamed
