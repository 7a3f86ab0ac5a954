{#- Every entry of every deal into a stage, all systems on one shape, numbered in time order
    per deal (1 = the stage the deal was created in), with the stage's kind and canonical
    stage, and when the deal left it (the next entry). -#}
with

visits as (
    {{ union_systems(
        'stage_visits_prepared',
        ['amocrm', 'bitrix24', 'creatio', 'megaplan', 'rosbiznessoft', 'file'],
        extra='null::timestamptz as register_ended_at'
    ) }}
    union all
    -- 1C's entries are rebuilt from its register, whose rows also say when the stage ended
    select
        'onec' as source_system,
        source_name,
        deal_id,
        entered_at,
        pipeline_id,
        stage_id,
        responsible_user_id,
        moved_by_user_id,
        visit_origin,
        tie_breaker,
        loaded_at,
        ended_at as register_ended_at
    from {{ ref('int_onec_stage_visits_rebuilt') }}
),

numbered as (
    select
        visits.*,
        row_number() over (
            partition by visits.source_name, visits.deal_id
            order by visits.entered_at nulls last, visits.tie_breaker
        ) as visit_number,
        count(*) over (partition by visits.source_name, visits.deal_id) as visit_count
    from visits
)

select
    numbered.source_name || ':' || numbered.deal_id || ':' || numbered.visit_number as visit_key,
    numbered.source_name || ':' || numbered.deal_id as deal_key,
    numbered.source_name,
    numbered.source_system,
    numbered.deal_id,
    numbered.visit_number,
    numbered.visit_number = numbered.visit_count as is_last_visit,
    numbered.visit_origin,
    numbered.entered_at,
    lead(numbered.entered_at) over (
        partition by numbered.source_name, numbered.deal_id
        order by numbered.visit_number
    ) as left_at,
    numbered.register_ended_at,
    numbered.pipeline_id,
    stage_list.pipeline_name,
    numbered.stage_id,
    numbered.source_name || ':' || numbered.pipeline_id || ':' || numbered.stage_id as stage_key,
    coalesce(stage_list.stage_name, numbered.stage_id) as stage_name,
    coalesce(stage_list.stage_kind, 'process') as stage_kind,
    coalesce(stage_list.canonical_stage, 'unmapped') as canonical_stage,
    stage_list.canonical_position,
    coalesce(stage_list.is_loss_reason_stage, false) as is_loss_reason_stage,
    numbered.responsible_user_id,
    numbered.moved_by_user_id,
    numbered.loaded_at
from numbered
left join {{ ref('int_source_stages_mapped') }} as stage_list
    on
        numbered.source_name = stage_list.source_name
        and numbered.pipeline_id = stage_list.pipeline_id
        and numbered.stage_id = stage_list.stage_id
