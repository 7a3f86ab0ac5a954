with

source as (
    select * from {{ source('raw_bitrix24', 'users') }}
),

renamed as (
    select
        connection_name as source_name,
        id as user_id,
        nullif(
            concat_ws(
                ' ',
                nullif(trim(record ->> 'LAST_NAME'), ''),
                nullif(trim(record ->> 'NAME'), ''),
                nullif(trim(record ->> 'SECOND_NAME'), '')
            ),
            ''
        ) as user_name,
        lower(nullif(trim(record ->> 'EMAIL'), '')) as email,
        coalesce(record ->> 'ACTIVE' is null or {{ bitrix24_flag("record ->> 'ACTIVE'") }}, true) as is_active,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
