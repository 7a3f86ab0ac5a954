with

source as (
    select * from {{ source('raw_bitrix24', 'categories') }}
),

renamed as (
    select
        connection_name as source_name,
        coalesce(record ->> 'id', record ->> 'ID', id) as category_id,
        coalesce(record ->> 'name', record ->> 'NAME') as category_name,
        coalesce(record ->> 'sort', record ->> 'SORT')::integer as category_sort,
        {{ bitrix24_flag("coalesce(record ->> 'isDefault', record ->> 'IS_DEFAULT')") }} as is_default,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
