{#- Every stage of every source pipeline, with its kind and its canonical stage.
    kind: won / lost by the source's semantics, conditional_refusal by the configured stage
    name, process otherwise. canonical_stage: the last canonical stage for won stages, `lost`
    for lost stages, `conditional_refusal` for the refusal stage; a process stage takes its
    mapping ("<pipeline> / <stage>" wins over "<stage>"), or `unmapped`. -#}
with

amocrm_stages as (
    select
        statuses.source_name,
        statuses.pipeline_id,
        pipelines.pipeline_name,
        statuses.status_id as stage_id,
        statuses.status_name as stage_name,
        statuses.status_sort as stage_sort,
        statuses.status_id as semantic_value,
        true as is_listed_in_pipeline
    from {{ ref('stg_amocrm__pipeline_statuses') }} as statuses
    left join {{ ref('stg_amocrm__pipelines') }} as pipelines
        on
            statuses.source_name = pipelines.source_name
            and statuses.pipeline_id = pipelines.pipeline_id
),

bitrix24_stages as (
    select
        statuses.source_name,
        statuses.category_id as pipeline_id,
        categories.category_name as pipeline_name,
        statuses.stage_id,
        statuses.stage_name,
        statuses.stage_sort,
        statuses.stage_semantic_id as semantic_value,
        true as is_listed_in_pipeline
    from {{ ref('stg_bitrix24__statuses') }} as statuses
    left join {{ ref('stg_bitrix24__categories') }} as categories
        on
            statuses.source_name = categories.source_name
            and statuses.category_id = categories.category_id
),

-- 1C process states are shared by every deal kind: one row per (kind, state), and one for
-- deals without a kind (pipeline_id '')
onec_kinds as (
    select
        source_name,
        deal_kind_id as pipeline_id,
        deal_kind_name as pipeline_name
    from {{ ref('stg_onec__deal_kinds') }}
    union all
    select distinct
        source_name,
        '' as pipeline_id,
        null as pipeline_name
    from {{ ref('stg_onec__stages') }}
),

onec_stages as (
    select
        kinds.source_name,
        kinds.pipeline_id,
        kinds.pipeline_name,
        stage_list.stage_id,
        stage_list.stage_name,
        stage_list.stage_sort,
        null as semantic_value,
        exists(
            select 1
            from {{ ref('stg_onec__deal_kind_stages') }} as listed
            where
                listed.source_name = kinds.source_name
                and listed.deal_kind_id = kinds.pipeline_id
                and listed.stage_id = stage_list.stage_id
        ) as is_listed_in_pipeline
    from onec_kinds as kinds
    inner join {{ ref('stg_onec__stages') }} as stage_list
        on kinds.source_name = stage_list.source_name
),

all_stages as (
    select
        'amocrm' as source_system,
        *
    from amocrm_stages
    union all
    select
        'bitrix24' as source_system,
        *
    from bitrix24_stages
    union all
    select
        'onec' as source_system,
        *
    from onec_stages
),

-- one code per key, names compared trimmed and case-insensitively
stage_mappings as (
    select
        source_name,
        lower(trim(pipeline_name)) as pipeline_key,
        lower(trim(source_stage_name)) as stage_key,
        min(stage_code) as stage_code
    from {{ ref('stg_config__stage_mappings') }}
    group by source_name, lower(trim(pipeline_name)), lower(trim(source_stage_name))
),

last_stage as (
    select stage_code as last_stage_code
    from {{ ref('stg_config__stages') }}
    where is_last_stage
),

classified as (
    select
        all_stages.*,
        sources.conditional_refusal_stage,
        coalesce(sources.has_loss_reason_stages, false) as has_loss_reason_stages,
        case
            when semantics.status in ('won', 'lost') then semantics.status
            when
                lower(trim(all_stages.stage_name)) = lower(trim(sources.conditional_refusal_stage))
                then 'conditional_refusal'
            else 'process'
        end as stage_kind
    from all_stages
    left join {{ ref('stg_config__sources') }} as sources
        on all_stages.source_name = sources.source_name
    left join {{ ref('int_status_semantics') }} as semantics
        on
            all_stages.source_system = semantics.source_system
            and all_stages.semantic_value = semantics.source_value
),

mapped as (
    select
        classified.*,
        coalesce(qualified.stage_code, unqualified.stage_code) as mapped_stage_code
    from classified
    left join stage_mappings as qualified
        on
            classified.source_name = qualified.source_name
            and lower(trim(classified.pipeline_name)) = qualified.pipeline_key
            and lower(trim(classified.stage_name)) = qualified.stage_key
    left join stage_mappings as unqualified
        on
            classified.source_name = unqualified.source_name
            and unqualified.pipeline_key is null
            and lower(trim(classified.stage_name)) = unqualified.stage_key
),

final as (
    select
        mapped.source_name || ':' || mapped.pipeline_id || ':' || mapped.stage_id as stage_key,
        mapped.source_name,
        mapped.source_system,
        mapped.pipeline_id,
        mapped.pipeline_name,
        mapped.stage_id,
        mapped.stage_name,
        mapped.stage_sort,
        mapped.is_listed_in_pipeline,
        mapped.stage_kind,
        case mapped.stage_kind
            when 'won' then last_stage.last_stage_code
            when 'lost' then 'lost'
            when 'conditional_refusal' then 'conditional_refusal'
            else coalesce(mapped.mapped_stage_code, 'unmapped')
        end as canonical_stage,
        mapped.stage_kind = 'process' and mapped.mapped_stage_code is not null as is_mapped,
        -- Bitrix24 failure stages other than the generic LOSE/APOLOGY name the loss reason
        (
            mapped.source_system = 'bitrix24'
            and mapped.has_loss_reason_stages
            and mapped.stage_kind = 'lost'
            and regexp_replace(mapped.stage_id, '^C[0-9]+:', '') not in ('LOSE', 'APOLOGY')
        ) as is_loss_reason_stage
    from mapped
    cross join last_stage
)

select
    final.*,
    config_stages.stage_position as canonical_position
from final
left join {{ ref('stg_config__stages') }} as config_stages
    on final.canonical_stage = config_stages.stage_code
