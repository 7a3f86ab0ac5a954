{#- What the data engineers should map: every source stage (a process stage, not the
    conditional refusal) and every source loss reason that funnel.yaml's mapping does not
    know, with how many deals they touch and the key to add under `sources.<connection>`.
    Deals meanwhile show them as canonical stage `unmapped` and reason `other` (settings'
    unmapped reason). -#}
with

stage_usage as (
    select
        stage_key,
        count(distinct deal_key) as deals,
        min(entered_at) as first_seen_at,
        max(entered_at) as last_seen_at
    from {{ ref('int_stage_visits') }}
    group by stage_key
),

stage_list as (
    select
        stage_list.source_name,
        stage_list.source_system,
        'stage' as value_type,
        stage_list.pipeline_name,
        stage_list.stage_name as source_value,
        coalesce(stage_usage.deals, 0) as deals,
        stage_usage.first_seen_at,
        stage_usage.last_seen_at,
        'sources.' || stage_list.source_name || '.stage_list: "'
        || case
            when stage_list.pipeline_name is not null then stage_list.pipeline_name || ' / '
            else ''
        end
        || stage_list.stage_name || '": <canonical stage>' as config_hint
    from {{ ref('int_source_stages_mapped') }} as stage_list
    left join stage_usage
        on stage_list.stage_key = stage_usage.stage_key
    where
        stage_list.stage_kind = 'process'
        and not stage_list.is_mapped
        and (stage_list.is_listed_in_pipeline or stage_usage.deals > 0)
),

reasons as (
    select
        source_name,
        source_system,
        'loss_reason' as value_type,
        null as pipeline_name,
        reason_raw as source_value,
        lost_deals as deals,
        first_lost_at as first_seen_at,
        last_lost_at as last_seen_at,
        'sources.' || source_name || '.loss_reasons: "' || reason_raw || '": <loss reason code>' as config_hint
    from {{ ref('int_loss_reasons_unioned') }}
    where not is_mapped
),

unmapped as (
    select * from stage_list
    union all
    select * from reasons
)

select
    source_name || ':' || value_type || ':' || coalesce(pipeline_name, '') || ':' || source_value as unmapped_key,
    source_name,
    source_system,
    value_type,
    pipeline_name,
    source_value,
    deals,
    first_seen_at,
    last_seen_at,
    config_hint
from unmapped
