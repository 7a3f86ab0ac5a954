with

source as (
    select * from {{ source('raw_amocrm', 'notes') }}
),

renamed as (
    select
        connection_name as source_name,
        id as note_id,
        record ->> 'entity_id' as lead_id,
        record ->> 'note_type' as note_type,
        record #>> '{params,text}' as note_text,
        nullif(nullif(record ->> 'created_by', ''), '0') as created_by_user_id,
        {{ amocrm_timestamp("record ->> 'created_at'") }} as created_at,
        {{ amocrm_timestamp("record ->> 'updated_at'") }} as updated_at,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
