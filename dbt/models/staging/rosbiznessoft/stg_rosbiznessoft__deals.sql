{#- RosBiznesSoft dates carry no zone: they stay local timestamps (*_local) here and become
    instants in the intermediate layer, where the connection's timezone is known. An empty
    date is '' or MySQL's zero date. -#}
with

source as (
    select * from {{ source('raw_rosbiznessoft', 'deals') }}
),

renamed as (
    select
        connection_name as source_name,
        id as deal_id,
        nullif(record -> 'values' ->> 'deal_number', '') as deal_number,
        nullif(record -> 'values' ->> 'deal_name', '') as deal_name,
        nullif(record -> 'values' ->> 'deal_pipeline', '') as pipeline_id,
        nullif(record -> 'values' ->> 'deal_stage', '') as stage_id,
        nullif(record -> 'values' ->> 'deal_responsible', '') as responsible_user_id,
        nullif(record -> 'values' ->> 'deal_company', '') as company_id,
        nullif(record -> 'values' ->> 'deal_loss_reason', '') as loss_reason_id,
        nullif(record -> 'values' ->> 'deal_amount', '')::numeric(18, 2) as amount,
        nullif(upper(record -> 'values' ->> 'deal_currency'), '') as currency,
        nullif(record -> 'values' ->> 'deal_comment', '') as comment_text,
        {{ rbs_local_timestamp("record -> 'values' ->> 'deal_created'") }} as created_at_local,
        {{ rbs_local_timestamp("record -> 'values' ->> 'deal_modified'") }} as modified_at_local,
        {{ rbs_local_timestamp("record -> 'values' ->> 'deal_closed'") }} as closed_at_local,
        record ->> 'structure' as structure_name,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
