with

source as (
    select * from {{ source('config', 'people') }}
),

renamed as (
    select
        person_name,
        lower(email) as email,
        source_name,
        user_id
    from source
)

select * from renamed
