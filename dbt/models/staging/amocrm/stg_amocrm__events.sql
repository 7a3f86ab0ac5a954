with

source as (
    select * from {{ source('raw_amocrm', 'events') }}
),

renamed as (
    select
        connection_name as source_name,
        id as event_id,
        record ->> 'type' as event_type,
        record ->> 'entity_id' as lead_id,
        nullif(nullif(record ->> 'created_by', ''), '0') as created_by_user_id,
        {{ amocrm_timestamp("record ->> 'created_at'") }} as created_at,
        record #>> '{value_before,0,lead_status,pipeline_id}' as pipeline_id_before,
        record #>> '{value_before,0,lead_status,id}' as status_id_before,
        record #>> '{value_after,0,lead_status,pipeline_id}' as pipeline_id_after,
        record #>> '{value_after,0,lead_status,id}' as status_id_after,
        loaded_at
    from source
    where
        not is_deleted
        and record ->> 'type' = 'lead_status_changed'
        and coalesce(record ->> 'entity_type', 'lead') = 'lead'
)

select * from renamed
