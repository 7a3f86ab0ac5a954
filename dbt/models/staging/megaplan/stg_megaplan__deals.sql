{#- Megaplan deals. References are links: only their id is read (a collection serves them bare).
    The program's custom fields (Category<n>CustomField<Name>) are kept together in
    custom_fields: which one holds the loss reason is configuration. -#}
with

source as (
    select * from {{ source('raw_megaplan', 'deals') }}
),

renamed as (
    select
        connection_name as source_name,
        id as deal_id,
        nullif(record ->> 'number', '') as deal_number,
        record ->> 'name' as deal_name,
        nullif(trim(record ->> 'description'), '') as description,
        record #>> '{program,id}' as program_id,
        record #>> '{state,id}' as state_id,
        record ->> 'result' as deal_result,
        case when record #>> '{manager,contentType}' = 'Employee' then record #>> '{manager,id}' end
            as manager_user_id,
        record #>> '{manager,contentType}' as manager_type,
        record #>> '{contractor,id}' as contractor_id,
        record #>> '{contractor,contentType}' as contractor_type,
        (record #>> '{price,value}')::numeric(18, 2) as amount,
        coalesce(nullif(record #>> '{price,currency}', ''), nullif(record ->> 'currency', '')) as currency,
        (record #>> '{price,valueInMain}')::numeric(18, 2) as amount_in_main_currency,
        (record #>> '{price,rate}')::numeric as currency_rate,
        case
            when record #>> '{timeCreated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{timeCreated,value}')::timestamptz
        end as created_at,
        case
            when record #>> '{timeUpdated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{timeUpdated,value}')::timestamptz
        end as modified_at,
        case
            when record #>> '{stateTimeUpdated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{stateTimeUpdated,value}')::timestamptz
        end as state_changed_at,
        case when record #>> '{userCreated,contentType}' = 'Employee' then record #>> '{userCreated,id}' end
            as created_by_user_id,
        (record ->> 'commentsCount')::integer as comments_count,
        case
            when record #>> '{lastCommentTimeCreated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{lastCommentTimeCreated,value}')::timestamptz
        end as last_comment_at,
        coalesce(
            (
                select jsonb_object_agg(field.key, field.value)
                from jsonb_each(source.record) as field
                where field.key ~ '^Category[0-9]+CustomField'
            ),
            '{}'::jsonb
        ) as custom_fields,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
