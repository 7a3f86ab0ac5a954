{#- 1C: the stage statistics register keeps ONE row per (deal, stage), overwritten when the
    deal re-enters a stage. Each row is read as one entry into its stage at ДатаНачала, and
    the entries are ordered by that time: A -> B -> A -> C shows as B -> A -> C, the first
    visit of A being lost at the source. ДатаОкончания is not needed (1C sometimes leaves it
    empty) except where ДатаНачала is empty. Local times become instants in the
    connection's timezone. The manager at each entry is the register row's Ответственный. -#}
with

deals as (
    select * from {{ ref('stg_onec__deals') }}
),

rows_ as (
    select
        stats.source_name,
        stats.deal_id,
        {{ local_instant('coalesce(stats.started_at_local, stats.ended_at_local)') }} as entered_at,
        {{ local_instant('stats.ended_at_local') }} as ended_at,
        coalesce(deals.deal_kind_id, '') as pipeline_id,
        stats.stage_id,
        coalesce(stats.responsible_user_id, deals.responsible_user_id) as responsible_user_id,
        null::text as moved_by_user_id,
        stage_list.stage_sort,
        stats.loaded_at
    from {{ ref('stg_onec__deal_stage_stats') }} as stats
    inner join deals
        on
            stats.source_name = deals.source_name
            and stats.deal_id = deals.deal_id
    left join {{ ref('stg_onec__stages') }} as stage_list
        on
            stats.source_name = stage_list.source_name
            and stats.stage_id = stage_list.stage_id
    left join {{ ref('int_source_timezones') }} as timezones
        on stats.source_name = timezones.source_name
    where stats.stage_id is not null
)

select
    source_name,
    deal_id,
    entered_at,
    pipeline_id,
    stage_id,
    responsible_user_id,
    moved_by_user_id,
    'register' as visit_origin,
    lpad(coalesce(stage_sort, 0)::text, 10, '0') || ':' || stage_id as tie_breaker,
    loaded_at,
    ended_at
from rows_
