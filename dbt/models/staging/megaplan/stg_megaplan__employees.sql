{#- Megaplan employees (the managers). The e-mail is the main e-mail of contactInfo. -#}
with

source as (
    select * from {{ source('raw_megaplan', 'employees') }}
),

emails as (
    select
        source.connection_name,
        source.id,
        lower(trim(contact.value ->> 'value')) as email,
        row_number() over (
            partition by source.connection_name, source.id
            order by coalesce((contact.value ->> 'isMain')::boolean, false) desc, contact.ordinality
        ) as email_rank
    from source
    cross join
        lateral jsonb_array_elements(
            case
                when jsonb_typeof(source.record -> 'contactInfo') = 'array' then source.record -> 'contactInfo'
                else '[]'::jsonb
            end
        ) with ordinality as contact (value, ordinality)
    where
        not source.is_deleted
        and contact.value ->> 'type' = 'email'
        and nullif(trim(contact.value ->> 'value'), '') is not null
),

renamed as (
    select
        source.connection_name as source_name,
        source.id as user_id,
        coalesce(
            nullif(
                concat_ws(
                    ' ',
                    nullif(trim(source.record ->> 'lastName'), ''),
                    nullif(trim(source.record ->> 'firstName'), ''),
                    nullif(trim(source.record ->> 'middleName'), '')
                ),
                ''
            ),
            nullif(trim(source.record ->> 'name'), '')
        ) as user_name,
        emails.email,
        coalesce((source.record ->> 'isWorking')::boolean, true) as is_active,
        nullif(trim(source.record ->> 'position'), '') as user_position,
        source.loaded_at
    from source
    left join emails
        on
            source.connection_name = emails.connection_name
            and source.id = emails.id
            and emails.email_rank = 1
    where not source.is_deleted
)

select * from renamed
