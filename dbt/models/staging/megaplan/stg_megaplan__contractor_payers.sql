{#- The payers (requisites) of each contractor company, where Megaplan keeps the INN, as
    written (spaces, prefixes and all): one row per (company, payer), in the company's order. -#}
with

source as (
    select * from {{ source('raw_megaplan', 'contractor_companies') }}
),

payers as (
    select
        source.connection_name,
        source.id,
        source.loaded_at,
        payer.value as payer,
        payer.ordinality as payer_position
    from source
    cross join
        lateral jsonb_array_elements(
            case
                when jsonb_typeof(source.record -> 'payers') = 'array' then source.record -> 'payers'
                else '[]'::jsonb
            end
        ) with ordinality as payer (value, ordinality)
    where not source.is_deleted
),

renamed as (
    select
        connection_name as source_name,
        id as company_id,
        payer ->> 'id' as payer_id,
        payer ->> 'name' as payer_name,
        payer ->> 'type' as payer_type,
        nullif(trim(payer ->> 'inn'), '') as inn_raw,
        nullif(trim(payer ->> 'kpp'), '') as kpp,
        payer_position::integer as payer_position,
        loaded_at
    from payers
)

select * from renamed
