{#- A deal's status history: one row per change of state (the deal's creation is not a row;
    its first state is the first row's from_state_id, or the deal's state when it has no row).
    The API does not document the order of rows: order by changed_at. -#}
with

source as (
    select * from {{ source('raw_megaplan', 'status_history') }}
),

renamed as (
    select
        connection_name as source_name,
        split_part(id, '|', 1) as deal_id,
        record ->> 'id' as history_id,
        record #>> '{fromStatus,id}' as from_state_id,
        record #>> '{toStatus,id}' as to_state_id,
        case
            when record #>> '{fromStatusUpdated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{fromStatusUpdated,value}')::timestamptz
        end as from_state_entered_at,
        case
            when record #>> '{toStatusUpdated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{toStatusUpdated,value}')::timestamptz
        end as changed_at,
        case
            when record #>> '{toStatusUser,contentType}' = 'Employee' then record #>> '{toStatusUser,id}'
        end as changed_by_user_id,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
