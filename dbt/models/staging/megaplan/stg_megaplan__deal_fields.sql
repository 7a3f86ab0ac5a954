{#- Custom deal fields (every program has its own, Category<n>CustomField<Name>): the name a
    deal record uses as its key, and the title people see in Megaplan. -#}
with

source as (
    select * from {{ source('raw_megaplan', 'deal_fields') }}
),

renamed as (
    select
        connection_name as source_name,
        coalesce(record ->> 'name', id) as field_name,
        nullif(trim(record ->> 'hint'), '') as field_title,
        record ->> 'type' as field_type,
        record #>> '{program,id}' as program_id,
        coalesce((record ->> 'isRequired')::boolean, false) as is_required,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
