{#- The dates of an export carry no zone: they stay local timestamps (*_local) here and become
    instants in the intermediate layer, where the connection's timezone is known. -#}
with

source as (
    select * from {{ source('raw_file', 'deals') }}
),

renamed as (
    select
        connection_name as source_name,
        id as deal_id,
        record -> 'values' ->> 'deal_name' as deal_name,
        record -> 'values' ->> 'pipeline' as pipeline_name,
        record -> 'values' ->> 'stage' as stage_name,
        record -> 'values' ->> 'manager' as manager_name,
        (record -> 'values' ->> 'amount')::numeric(18, 2) as amount,
        record -> 'values' ->> 'currency' as currency,
        (record -> 'values' ->> 'created_at')::timestamp as created_at_local,
        (record -> 'values' ->> 'closed_at')::timestamp as closed_at_local,
        record -> 'values' ->> 'status' as status,
        record -> 'values' ->> 'status_raw' as status_raw,
        record -> 'values' ->> 'loss_reason' as loss_reason_raw,
        record -> 'values' ->> 'comment' as comment_text,
        record -> 'values' ->> 'customer_name' as customer_name,
        record -> 'values' ->> 'customer_inn' as customer_inn_raw,
        {{ normalized_inn("record -> 'values' ->> 'customer_inn'") }} as customer_inn,
        record ->> 'file' as file_name,
        (record ->> 'row_number')::integer as row_number,
        updated_at as exported_at,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
