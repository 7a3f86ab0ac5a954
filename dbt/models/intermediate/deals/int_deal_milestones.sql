{#- What a deal's stage history says, one row per deal:
    - furthest stage: a deal reached a canonical stage if it was ever at that stage or
      beyond (a skipped stage counts as passed); won deals reached the last stage;
    - lost_at: for a lost deal, the last stage before it entered its lost stage, looking
      through the conditional refusal (and through other lost stages). In 1C a lost deal
      stays in its last process stage, which is then the stage it was lost at;
    - passed_conditional_refusal: the deal was in the conditional refusal stage at some time;
    - skipped_conditional_refusal: lost in a pipeline that has a conditional refusal stage,
      straight from a stage other than it.
    Incremental: a run rewrites only the deals whose inputs changed (macro deals_to_build). -#}
{{
    config(
        materialized='incremental',
        unique_key='deal_key',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=["{{ delete_outdated_deals() }}"],
        indexes=[{'columns': ['deal_key', 'inputs_fingerprint'], 'unique': True}],
    )
}}

with

to_build as (
    {{ deals_to_build() }}
),

deals as (
    select
        deal_key,
        status
    from {{ ref('int_deals_unioned') }}
    {%- if is_incremental() %}
        where deal_key in (select to_build.deal_key from to_build)
    {%- endif %}
),

visits as (
    select * from {{ ref('int_stage_visits') }}
    {%- if is_incremental() %}
        where deal_key in (select to_build.deal_key from to_build)
    {%- endif %}
),

last_position as (
    select stage_position as last_stage_position
    from {{ ref('stg_config__stages') }}
    where is_last_stage
),

pipelines_with_refusal as (
    select distinct
        source_name,
        pipeline_id
    from {{ ref('int_source_stages_mapped') }}
    where stage_kind = 'conditional_refusal'
),

last_visits as (
    select * from visits
    where is_last_visit
),

-- the visit the loss is read back from: the final lost entry (amoCRM, Bitrix24), or past the
-- last visit where the deal is lost while sitting in a process stage (1C)
loss_cutoffs as (
    select
        deals.deal_key,
        case
            when last_visits.stage_kind = 'lost' then last_visits.visit_number
            else last_visits.visit_number + 1
        end as cutoff_visit_number
    from deals
    inner join last_visits
        on deals.deal_key = last_visits.deal_key
    where deals.status = 'lost'
),

lost_at_ranked as (
    select
        visits.*,
        row_number() over (partition by visits.deal_key order by visits.visit_number desc) as lost_at_rank
    from visits
    inner join loss_cutoffs
        on
            visits.deal_key = loss_cutoffs.deal_key
            and visits.visit_number < loss_cutoffs.cutoff_visit_number
    where visits.stage_kind not in ('conditional_refusal', 'lost')
),

previous_visits as (
    select
        visits.deal_key,
        visits.stage_kind
    from visits
    inner join last_visits
        on
            visits.deal_key = last_visits.deal_key
            and visits.visit_number = last_visits.visit_number - 1
),

visit_summary as (
    select
        deal_key,
        max(canonical_position) filter (where stage_kind = 'process') as furthest_process_position,
        bool_or(stage_kind = 'conditional_refusal') as passed_conditional_refusal,
        bool_or(stage_kind = 'process' and canonical_stage = 'unmapped') as has_unmapped_stage_visit,
        count(*) as visit_count
    from visits
    group by deal_key
),

positions as (
    select
        deals.deal_key,
        case
            when deals.status = 'won' then last_position.last_stage_position
            else visit_summary.furthest_process_position
        end as furthest_stage_position
    from deals
    cross join last_position
    left join visit_summary
        on deals.deal_key = visit_summary.deal_key
)

select
    deals.deal_key,
    positions.furthest_stage_position,
    furthest.stage_code as furthest_canonical_stage,
    coalesce(visit_summary.passed_conditional_refusal, false) as passed_conditional_refusal,
    coalesce(
        deals.status = 'lost'
        and last_visits.stage_kind = 'lost'
        and pipelines_with_refusal.pipeline_id is not null
        and coalesce(previous_visits.stage_kind, '') <> 'conditional_refusal',
        false
    ) as skipped_conditional_refusal,
    coalesce(visit_summary.has_unmapped_stage_visit, false) as has_unmapped_stage_visit,
    coalesce(visit_summary.visit_count, 0) as stage_visit_count,
    lost_at.visit_number as lost_at_visit_number,
    lost_at.pipeline_id as lost_at_pipeline_id,
    lost_at.pipeline_name as lost_at_pipeline_name,
    lost_at.stage_id as lost_at_stage_id,
    lost_at.stage_name as lost_at_stage,
    case
        when deals.status <> 'lost' then null
        when lost_at.deal_key is null then 'unknown'
        else lost_at.canonical_stage
    end as lost_at_canonical_stage,
    last_visits.entered_at as current_stage_entered_at,
    to_build.inputs_fingerprint
from deals
left join to_build
    on deals.deal_key = to_build.deal_key
left join positions
    on deals.deal_key = positions.deal_key
left join {{ ref('stg_config__stages') }} as furthest
    on positions.furthest_stage_position = furthest.stage_position
left join visit_summary
    on deals.deal_key = visit_summary.deal_key
left join last_visits
    on deals.deal_key = last_visits.deal_key
left join previous_visits
    on deals.deal_key = previous_visits.deal_key
left join pipelines_with_refusal
    on
        last_visits.source_name = pipelines_with_refusal.source_name
        and last_visits.pipeline_id = pipelines_with_refusal.pipeline_id
left join lost_at_ranked as lost_at
    on
        deals.deal_key = lost_at.deal_key
        and lost_at.lost_at_rank = 1
