{#- Every stage of every source pipeline, with its kind and its canonical stage.
    kind: won / lost by the source's semantics (for a file connection: the status of the deals
    seen in the stage, unless funnel.yaml maps the stage), conditional_refusal by the
    configured stage name, process otherwise. canonical_stage: the last canonical stage for won stages, `lost`
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

-- Creatio: one stage list per site, no pipelines (pipeline_id '')
creatio_stages as (
    select
        source_name,
        '' as pipeline_id,
        null as pipeline_name,
        stage_id,
        stage_name,
        stage_number as stage_sort,
        case
            when is_final and is_successful then 'won'
            when is_final then 'lost'
            else 'open'
        end as semantic_value,
        true as is_listed_in_pipeline
    from {{ ref('stg_creatio__stages') }}
),

-- Megaplan: a program's states, in the order the program lists them
megaplan_stages as (
    select
        states.source_name,
        states.program_id as pipeline_id,
        programs.program_name as pipeline_name,
        states.state_id as stage_id,
        states.state_name as stage_name,
        positions.state_position as stage_sort,
        states.state_type as semantic_value,
        positions.state_id is not null as is_listed_in_pipeline
    from {{ ref('stg_megaplan__program_states') }} as states
    left join {{ ref('stg_megaplan__programs') }} as programs
        on
            states.source_name = programs.source_name
            and states.program_id = programs.program_id
    left join {{ ref('stg_megaplan__program_state_positions') }} as positions
        on
            states.source_name = positions.source_name
            and states.program_id = positions.program_id
            and states.state_id = positions.state_id
),

-- RosBiznesSoft: the stages of each deal type, their result read as open / won / lost
rosbiznessoft_stages as (
    select
        stage_list.source_name,
        coalesce(stage_list.pipeline_id, '') as pipeline_id,
        pipelines.pipeline_name,
        stage_list.stage_id,
        stage_list.stage_name,
        stage_list.stage_sort,
        stage_list.stage_status as semantic_value,
        true as is_listed_in_pipeline
    from {{ ref('stg_rosbiznessoft__stages') }} as stage_list
    left join {{ ref('stg_rosbiznessoft__pipelines') }} as pipelines
        on
            stage_list.source_name = pipelines.source_name
            and stage_list.pipeline_id = pipelines.pipeline_id
),

-- File connections: the stages the exports name, a stage's id being its name and a pipeline's
-- its name ('' when the export names none). A file has no stage semantics: the status column
-- gives them. A stage where every deal seen in it (now, or by a load) was won is read as won,
-- where every one was lost as lost, otherwise as open (a deal lost while it sits in a working
-- stage leaves that stage open); a stage funnel.yaml maps is a process stage whatever its deals.
file_stages_seen as (
    select
        source_name,
        pipeline_id,
        stage_id,
        null as status
    from {{ ref('int_file_stage_visits_prepared') }}
    union all
    select
        source_name,
        coalesce(pipeline_name, '') as pipeline_id,
        stage_name as stage_id,
        status
    from {{ ref('stg_file__deals') }}
    where stage_name is not null
    union all
    select
        source_name,
        coalesce(pipeline_name, '') as pipeline_id,
        stage_name as stage_id,
        status
    from {{ ref('stg_file__stage_snapshots') }}
    where stage_name is not null
),

file_stages as (
    select
        source_name,
        pipeline_id,
        nullif(pipeline_id, '') as pipeline_name,
        stage_id,
        stage_id as stage_name,
        null::integer as stage_sort,
        case
            when bool_and(status = 'won') then 'won'
            when bool_and(status = 'lost') then 'lost'
            else 'open'
        end as semantic_value,
        true as is_listed_in_pipeline
    from file_stages_seen
    group by source_name, pipeline_id, stage_id
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
    union all
    select
        'creatio' as source_system,
        *
    from creatio_stages
    union all
    select
        'megaplan' as source_system,
        *
    from megaplan_stages
    union all
    select
        'rosbiznessoft' as source_system,
        *
    from rosbiznessoft_stages
    union all
    select
        'file' as source_system,
        *
    from file_stages
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

mapped as (
    select
        all_stages.*,
        coalesce(qualified.stage_code, unqualified.stage_code) as mapped_stage_code
    from all_stages
    left join stage_mappings as qualified
        on
            all_stages.source_name = qualified.source_name
            and lower(trim(all_stages.pipeline_name)) = qualified.pipeline_key
            and lower(trim(all_stages.stage_name)) = qualified.stage_key
    left join stage_mappings as unqualified
        on
            all_stages.source_name = unqualified.source_name
            and unqualified.pipeline_key is null
            and lower(trim(all_stages.stage_name)) = unqualified.stage_key
),

classified as (
    select
        mapped.*,
        sources.conditional_refusal_stage,
        coalesce(sources.has_loss_reason_stages, false) as has_loss_reason_stages,
        case
            -- a file's won / lost is read from its deals: a mapped stage stays a process stage
            when
                semantics.status in ('won', 'lost')
                and not (mapped.source_system = 'file' and mapped.mapped_stage_code is not null)
                then semantics.status
            when
                lower(trim(mapped.stage_name)) = lower(trim(sources.conditional_refusal_stage))
                then 'conditional_refusal'
            else 'process'
        end as stage_kind
    from mapped
    left join {{ ref('stg_config__sources') }} as sources
        on mapped.source_name = sources.source_name
    left join {{ ref('int_status_semantics') }} as semantics
        on
            mapped.source_system = semantics.source_system
            and mapped.semantic_value = semantics.source_value
),

final as (
    select
        classified.source_name || ':' || classified.pipeline_id || ':' || classified.stage_id as stage_key,
        classified.source_name,
        classified.source_system,
        classified.pipeline_id,
        classified.pipeline_name,
        classified.stage_id,
        classified.stage_name,
        classified.stage_sort,
        classified.is_listed_in_pipeline,
        classified.stage_kind,
        case classified.stage_kind
            when 'won' then last_stage.last_stage_code
            when 'lost' then 'lost'
            when 'conditional_refusal' then 'conditional_refusal'
            else coalesce(classified.mapped_stage_code, 'unmapped')
        end as canonical_stage,
        classified.stage_kind = 'process' and classified.mapped_stage_code is not null as is_mapped,
        -- Bitrix24 failure stages other than the generic LOSE/APOLOGY name the loss reason;
        -- so do Megaplan's negative states
        (
            classified.source_system = 'bitrix24'
            and classified.has_loss_reason_stages
            and classified.stage_kind = 'lost'
            and regexp_replace(classified.stage_id, '^C[0-9]+:', '') not in ('LOSE', 'APOLOGY')
        )
        or (
            classified.source_system = 'megaplan'
            and classified.has_loss_reason_stages
            and classified.stage_kind = 'lost'
        ) as is_loss_reason_stage
    from classified
    cross join last_stage
)

select
    final.*,
    config_stages.stage_position as canonical_position
from final
left join {{ ref('stg_config__stages') }} as config_stages
    on final.canonical_stage = config_stages.stage_code
