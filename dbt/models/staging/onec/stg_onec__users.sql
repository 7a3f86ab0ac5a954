with

source as (
    select * from {{ source('raw_onec', 'users') }}
),

renamed as (
    select
        connection_name as source_name,
        id as user_id,
        record ->> 'Description' as user_name,
        lower(
            nullif(
                trim(
                    jsonb_path_query_first(
                        record, '$."КонтактнаяИнформация"[*] ? (@."Тип" == "АдресЭлектроннойПочты")'
                    ) ->> 'АдресЭП'
                ),
                ''
            )
        ) as email,
        not coalesce((record ->> 'Недействителен')::boolean, false) as is_active,
        coalesce((record ->> 'Служебный')::boolean, false) as is_service_user,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
