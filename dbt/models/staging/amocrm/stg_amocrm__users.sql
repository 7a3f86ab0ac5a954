with

source as (
    select * from {{ source('raw_amocrm', 'users') }}
),

renamed as (
    select
        connection_name as source_name,
        id as user_id,
        record ->> 'name' as user_name,
        lower(nullif(trim(record ->> 'email'), '')) as email,
        coalesce((record #>> '{rights,is_active}')::boolean, true) as is_active,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
