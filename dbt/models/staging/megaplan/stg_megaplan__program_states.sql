{#- Program states: `type` is the outcome a state means — active (open), positive (won),
    negative (lost). A negative state's name may be the loss reason itself. -#}
with

source as (
    select * from {{ source('raw_megaplan', 'program_states') }}
),

renamed as (
    select
        connection_name as source_name,
        id as state_id,
        record #>> '{program,id}' as program_id,
        record ->> 'name' as state_name,
        record ->> 'type' as state_type,
        coalesce((record ->> 'isEntry')::boolean, false) as is_entry,
        record ->> 'color' as state_color,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
