{#- Contacts as customers of deals without a company. Phones and e-mails are left out on
    purpose: nothing downstream needs them. -#}
with

source as (
    select * from {{ source('raw_bitrix24', 'contacts') }}
),

renamed as (
    select
        connection_name as source_name,
        id as contact_id,
        nullif(
            concat_ws(
                ' ',
                nullif(trim(record ->> 'LAST_NAME'), ''),
                nullif(trim(record ->> 'NAME'), ''),
                nullif(trim(record ->> 'SECOND_NAME'), '')
            ),
            ''
        ) as contact_name,
        {{ bitrix24_ref("record ->> 'COMPANY_ID'") }} as company_id,
        {{ bitrix24_timestamp("record ->> 'DATE_CREATE'") }} as created_at,
        {{ bitrix24_timestamp("record ->> 'DATE_MODIFY'") }} as modified_at,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
