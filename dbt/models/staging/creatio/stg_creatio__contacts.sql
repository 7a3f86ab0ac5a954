{#- Creatio contacts: the employees' contacts (who own opportunities) and the customers'
    people. -#}
with

source as (
    select * from {{ source('raw_creatio', 'contacts') }}
),

renamed as (
    select
        connection_name as source_name,
        lower(id) as contact_id,
        record ->> 'Name' as contact_name,
        nullif(lower(record ->> 'AccountId'), '00000000-0000-0000-0000-000000000000') as account_id,
        nullif(lower(record ->> 'TypeId'), '00000000-0000-0000-0000-000000000000') as contact_type_id,
        nullif(record ->> 'JobTitle', '') as job_title,
        lower(nullif(trim(record ->> 'Email'), '')) as email,
        nullif(record ->> 'Phone', '') as phone,
        nullif(record ->> 'MobilePhone', '') as mobile_phone,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
