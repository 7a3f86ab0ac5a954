with

source as (
    select * from {{ source('raw_amocrm', 'companies') }}
),

renamed as (
    select
        connection_name as source_name,
        id as company_id,
        record ->> 'name' as company_name,
        -- the INN is a custom field: by its code where the account set one, else by its name
        jsonb_path_query_first(
            record,
            '$.custom_fields_values[*]'
            ' ? (@.field_code == "INN" || @.field_name like_regex "^(ИНН|INN)$" flag "i")'
            '.values[0].value'
        ) #>> '{}' as inn_raw,
        {{ amocrm_timestamp("record ->> 'created_at'") }} as created_at,
        {{ amocrm_timestamp("record ->> 'updated_at'") }} as updated_at,
        loaded_at
    from source
    where
        not is_deleted
        and coalesce((record ->> 'is_deleted')::boolean, false) = false
)

select * from renamed
