{#- ISO week of deal creation (funnel.yaml's timezone) x manager x canonical stage: the deals
    that reached the stage (were at it or beyond; won deals reached the last stage), those
    that reached the next one, the conversion, the stage's target and the gap. Counts add
    up over weeks, so any period is the sum of its weeks. -#}
with

deals as (
    select * from {{ ref('fct_deals') }}
    where furthest_stage_position is not null
),

stage_list as (
    select * from {{ ref('dim_stages') }}
    where is_funnel_stage
),

reached as (
    select
        deals.created_week,
        deals.manager_key,
        stage_list.stage_code,
        stage_list.stage_position,
        stage_list.is_last_stage,
        deals.furthest_stage_position > stage_list.stage_position as has_reached_next
    from deals
    inner join stage_list
        on deals.furthest_stage_position >= stage_list.stage_position
),

by_week as (
    select
        created_week,
        manager_key,
        stage_code,
        stage_position,
        is_last_stage,
        count(*) as reached_stage,
        count(*) filter (where has_reached_next) as reached_next_stage
    from reached
    group by created_week, manager_key, stage_code, stage_position, is_last_stage
)

select
    by_week.created_week as week_start,
    extract(isoyear from by_week.created_week)::integer as iso_year,
    extract(week from by_week.created_week)::integer as iso_week,
    by_week.manager_key,
    managers.manager_name,
    by_week.stage_code as canonical_stage,
    stage_list.stage_name,
    by_week.stage_position,
    stage_list.next_stage_code,
    by_week.reached_stage,
    case when not by_week.is_last_stage then by_week.reached_next_stage end as reached_next_stage,
    (
        case
            when not by_week.is_last_stage
                then round(by_week.reached_next_stage::numeric / by_week.reached_stage, 6)
        end
    )::numeric(9, 6) as conversion_rate,
    stage_list.target_conversion::numeric(9, 6) as target_rate,
    (
        case
            when not by_week.is_last_stage
                then round(
                    by_week.reached_next_stage::numeric / by_week.reached_stage - stage_list.target_conversion, 6
                )
        end
    )::numeric(9, 6) as gap
from by_week
inner join stage_list
    on by_week.stage_code = stage_list.stage_code
left join {{ ref('dim_managers') }} as managers
    on by_week.manager_key = managers.manager_key
