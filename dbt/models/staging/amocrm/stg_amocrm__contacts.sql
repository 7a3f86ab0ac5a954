{#- Contacts as customers of leads without a company. Phones and e-mails are left out on
    purpose: nothing downstream needs them. -#}
with

source as (
    select * from {{ source('raw_amocrm', 'contacts') }}
),

renamed as (
    select
        connection_name as source_name,
        id as contact_id,
        record ->> 'name' as contact_name,
        record #>> '{_embedded,companies,0,id}' as company_id,
        {{ amocrm_timestamp("record ->> 'created_at'") }} as created_at,
        {{ amocrm_timestamp("record ->> 'updated_at'") }} as updated_at,
        loaded_at
    from source
    where
        not is_deleted
        and coalesce((record ->> 'is_deleted')::boolean, false) = false
)

select * from renamed
