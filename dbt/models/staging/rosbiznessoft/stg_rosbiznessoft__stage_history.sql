{#- A row per stage change: the deal entered stage_id at changed_at_local (the installation's
    local time); the first row of a deal is its creation. -#}
with

source as (
    select * from {{ source('raw_rosbiznessoft', 'stage_history') }}
),

renamed as (
    select
        connection_name as source_name,
        id as history_id,
        nullif(record -> 'values' ->> 'history_deal', '') as deal_id,
        nullif(record -> 'values' ->> 'history_stage', '') as stage_id,
        nullif(record -> 'values' ->> 'history_user', '') as user_id,
        {{ rbs_local_timestamp("record -> 'values' ->> 'history_date'") }} as changed_at_local,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
