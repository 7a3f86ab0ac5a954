with

source as (
    select * from {{ source('raw_amocrm', 'leads') }}
),

renamed as (
    select
        connection_name as source_name,
        id as lead_id,
        record ->> 'name' as lead_name,
        (record ->> 'price')::numeric(18, 2) as price,
        record ->> 'pipeline_id' as pipeline_id,
        record ->> 'status_id' as status_id,
        record ->> 'responsible_user_id' as responsible_user_id,
        nullif(nullif(record ->> 'created_by', ''), '0') as created_by_user_id,
        coalesce(
            nullif(nullif(record ->> 'loss_reason_id', ''), '0'),
            record #>> '{_embedded,loss_reason,0,id}'
        ) as loss_reason_id,
        record #>> '{_embedded,loss_reason,0,name}' as embedded_loss_reason_name,
        record #>> '{_embedded,companies,0,id}' as company_id,
        coalesce(
            jsonb_path_query_first(record, '$._embedded.contacts[*] ? (@.is_main == true).id') #>> '{}',
            record #>> '{_embedded,contacts,0,id}'
        ) as main_contact_id,
        coalesce(record -> 'custom_fields_values', '[]'::jsonb) as custom_fields,
        {{ amocrm_timestamp("record ->> 'created_at'") }} as created_at,
        {{ amocrm_timestamp("record ->> 'updated_at'") }} as updated_at,
        {{ amocrm_timestamp("record ->> 'closed_at'") }} as closed_at,
        loaded_at
    from source
    where
        not is_deleted
        and coalesce((record ->> 'is_deleted')::boolean, false) = false
)

select * from renamed
