{#- Creatio accounts (the customers). The INN is a column of Account only with the Financial
    Services package (INN); elsewhere sites add their own (UsrINN, UsrInn): the first of these
    that holds a value. Other custom columns are kept in custom_fields. -#}
with

source as (
    select * from {{ source('raw_creatio', 'accounts') }}
),

renamed as (
    select
        connection_name as source_name,
        lower(id) as account_id,
        record ->> 'Name' as account_name,
        nullif(record ->> 'AlternativeName', '') as alternative_name,
        nullif(
            trim(coalesce(
                nullif(trim(record ->> 'INN'), ''),
                nullif(trim(record ->> 'UsrINN'), ''),
                nullif(trim(record ->> 'UsrInn'), '')
            )),
            ''
        ) as inn_raw,
        nullif(
            lower(record ->> 'PrimaryContactId'), '00000000-0000-0000-0000-000000000000'
        ) as primary_contact_id,
        nullif(lower(record ->> 'OwnerId'), '00000000-0000-0000-0000-000000000000') as owner_contact_id,
        (record ->> 'CreatedOn')::timestamptz as created_at,
        (record ->> 'ModifiedOn')::timestamptz as modified_at,
        jsonb_path_query_array(record, '$.keyvalue() ? (@.key like_regex "^Usr")') as custom_fields,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
