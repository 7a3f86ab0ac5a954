with

source as (
    select * from {{ source('raw_onec', 'partners') }}
),

renamed as (
    select
        connection_name as source_name,
        id as partner_id,
        record ->> 'Description' as partner_name,
        nullif(record ->> 'НаименованиеПолное', '') as partner_full_name,
        {{ onec_local_timestamp("record ->> 'ДатаРегистрации'") }} as registered_at_local,
        coalesce((record ->> 'DeletionMark')::boolean, false) as is_marked_for_deletion,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
