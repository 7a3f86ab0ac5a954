{#- The stages a deal kind lists (its tabular section Этапы): one row per (kind, stage). -#}
with

source as (
    select * from {{ source('raw_onec', 'deal_kinds') }}
),

rows_ as (
    select
        source.connection_name,
        source.id,
        source.loaded_at,
        stage_row.value as stage_row
    from source
    cross join
        lateral jsonb_array_elements(
            case
                when jsonb_typeof(source.record -> 'Этапы') = 'array' then source.record -> 'Этапы'
                else '[]'::jsonb
            end
        ) as stage_row
    where not source.is_deleted
),

renamed as (
    select
        connection_name as source_name,
        id as deal_kind_id,
        {{ onec_ref("stage_row ->> 'Этап_Key'") }} as stage_id,
        (stage_row ->> 'LineNumber')::integer as line_number,
        loaded_at
    from rows_
)

select * from renamed
