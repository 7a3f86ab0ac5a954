{#- Megaplan contractor companies (the customers); their INN is on their payers
    (stg_megaplan__contractor_payers). -#}
with

source as (
    select * from {{ source('raw_megaplan', 'contractor_companies') }}
),

renamed as (
    select
        connection_name as source_name,
        id as company_id,
        record ->> 'name' as company_name,
        case
            when record #>> '{timeCreated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{timeCreated,value}')::timestamptz
        end as created_at,
        case
            when record #>> '{timeUpdated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{timeUpdated,value}')::timestamptz
        end as modified_at,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
