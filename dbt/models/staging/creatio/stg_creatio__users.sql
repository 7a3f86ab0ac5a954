{#- Creatio's system users (SysAdminUnit of type 4). A deal's owner is a contact: a user
    reaches it through contact_id. -#}
with

source as (
    select * from {{ source('raw_creatio', 'users') }}
),

renamed as (
    select
        connection_name as source_name,
        lower(id) as user_id,
        record ->> 'Name' as user_login,
        nullif(lower(record ->> 'ContactId'), '00000000-0000-0000-0000-000000000000') as contact_id,
        lower(nullif(trim(record ->> 'Email'), '')) as email,
        coalesce((record ->> 'Active')::boolean, false) as is_active,
        loaded_at
    from source
    where
        not is_deleted
        and (record ->> 'SysAdminUnitTypeValue')::integer = 4
)

select * from renamed
