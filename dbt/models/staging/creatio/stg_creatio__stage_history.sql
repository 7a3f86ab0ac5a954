{#- Creatio's OpportunityInStage rows. Creatio writes them itself on every stage change
    (OpportunityStageHelper): a move forward also inserts a row for every non-final stage it
    skipped, with StartDate = DueDate (has_zero_duration); a move backward marks Historical the
    rows of the stages at or after the new one; a row starts Number seconds after the move
    (created_at is the moment of the move). -#}
with

source as (
    select * from {{ source('raw_creatio', 'stage_history') }}
),

renamed as (
    select
        connection_name as source_name,
        lower(id) as stage_row_id,
        nullif(lower(record ->> 'OpportunityId'), '00000000-0000-0000-0000-000000000000') as opportunity_id,
        nullif(lower(record ->> 'StageId'), '00000000-0000-0000-0000-000000000000') as stage_id,
        nullif(lower(record ->> 'OwnerId'), '00000000-0000-0000-0000-000000000000') as owner_contact_id,
        nullif(
            lower(record ->> 'CreatedById'), '00000000-0000-0000-0000-000000000000'
        ) as created_by_contact_id,
        (record ->> 'CreatedOn')::timestamptz as created_at,
        (record ->> 'ModifiedOn')::timestamptz as modified_at,
        (record ->> 'StartDate')::timestamptz as started_at,
        (record ->> 'DueDate')::timestamptz as due_at,
        coalesce((record ->> 'Historical')::boolean, false) as is_historical,
        coalesce(record ->> 'StartDate' = record ->> 'DueDate', false) as has_zero_duration,
        nullif(record ->> 'Comments', '') as stage_comment,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
