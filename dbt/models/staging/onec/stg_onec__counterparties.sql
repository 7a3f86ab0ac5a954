with

source as (
    select * from {{ source('raw_onec', 'counterparties') }}
),

renamed as (
    select
        connection_name as source_name,
        id as counterparty_id,
        record ->> 'Description' as counterparty_name,
        nullif(trim(record ->> 'ИНН'), '') as inn_raw,
        nullif(trim(record ->> 'КПП'), '') as kpp,
        {{ onec_ref("record ->> 'Партнер_Key'") }} as partner_id,
        coalesce((record ->> 'DeletionMark')::boolean, false) as is_marked_for_deletion,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
