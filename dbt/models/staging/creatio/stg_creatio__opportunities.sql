{#- Creatio opportunities. Empty lookups (the all-zero GUID) become null; DueDate ("Closed on")
    is the close date of a closed opportunity. Creatio has no currency on an opportunity: the
    amount is in the site's base currency unless a custom Usr* column says otherwise. -#}
with

source as (
    select * from {{ source('raw_creatio', 'opportunities') }}
),

renamed as (
    select
        connection_name as source_name,
        lower(id) as opportunity_id,
        record ->> 'Title' as opportunity_title,
        nullif(lower(record ->> 'StageId'), '00000000-0000-0000-0000-000000000000') as stage_id,
        nullif(lower(record ->> 'OwnerId'), '00000000-0000-0000-0000-000000000000') as owner_contact_id,
        nullif(lower(record ->> 'AccountId'), '00000000-0000-0000-0000-000000000000') as account_id,
        nullif(lower(record ->> 'ContactId'), '00000000-0000-0000-0000-000000000000') as contact_id,
        nullif(
            lower(record ->> 'CloseReasonId'), '00000000-0000-0000-0000-000000000000'
        ) as close_reason_id,
        nullif(lower(record ->> 'TypeId'), '00000000-0000-0000-0000-000000000000') as opportunity_type_id,
        (record ->> 'Amount')::numeric(18, 2) as amount,
        (record ->> 'Probability')::integer as probability,
        nullif(record ->> 'Notes', '') as notes,
        nullif(record ->> 'Description', '') as description,
        (record ->> 'CreatedOn')::timestamptz as created_at,
        (record ->> 'ModifiedOn')::timestamptz as modified_at,
        (record ->> 'DueDate')::timestamptz as due_at,
        nullif(
            lower(record ->> 'CreatedById'), '00000000-0000-0000-0000-000000000000'
        ) as created_by_contact_id,
        nullif(
            lower(record ->> 'ModifiedById'), '00000000-0000-0000-0000-000000000000'
        ) as modified_by_contact_id,
        -- the site's own columns (Usr*) as [{"key": ..., "value": ...}]: which one holds the
        -- loss comment or a currency is configuration
        jsonb_path_query_array(record, '$.keyvalue() ? (@.key like_regex "^Usr")') as custom_fields,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
