{#- Who should learn what from whom: for each manager and canonical stage where the
    manager's conversion (over the whole history of rpt_funnel_conversion) is below the
    stage's target, the colleague with the best conversion at that stage, if one does
    better. Managers with fewer than `coaching_min_deals` deals reaching the stage are left
    out, as learners and as coaches: their rates are noise. -#}
with

totals as (
    select
        manager_key,
        max(manager_name) as manager_name,
        canonical_stage,
        max(stage_name) as stage_name,
        max(stage_position) as stage_position,
        max(target_rate) as target_rate,
        sum(reached_stage) as reached_stage,
        sum(reached_next_stage) as reached_next_stage
    from {{ ref('rpt_funnel_conversion') }}
    where target_rate is not null
    group by manager_key, canonical_stage
),

rates as (
    select
        totals.*,
        round(totals.reached_next_stage::numeric / totals.reached_stage, 6)::numeric(9, 6) as conversion_rate
    from totals
    where totals.reached_stage >= {{ var('coaching_min_deals', 10) }}
),

coaches as (
    select
        learner.manager_key,
        learner.canonical_stage,
        coach.manager_key as coach_manager_key,
        coach.manager_name as coach_manager_name,
        coach.reached_stage as coach_reached_stage,
        coach.conversion_rate as coach_conversion_rate,
        row_number() over (
            partition by learner.manager_key, learner.canonical_stage
            order by coach.conversion_rate desc, coach.reached_stage desc, coach.manager_key asc
        ) as coach_rank
    from rates as learner
    inner join rates as coach
        on
            learner.canonical_stage = coach.canonical_stage
            and learner.manager_key <> coach.manager_key
            and learner.conversion_rate < coach.conversion_rate
)

select
    rates.manager_key,
    rates.manager_name,
    rates.canonical_stage,
    rates.stage_name,
    rates.stage_position,
    rates.reached_stage,
    rates.reached_next_stage,
    rates.conversion_rate,
    rates.target_rate,
    round(rates.conversion_rate - rates.target_rate, 6)::numeric(9, 6) as gap,
    coaches.coach_manager_key,
    coaches.coach_manager_name,
    coaches.coach_reached_stage,
    coaches.coach_conversion_rate,
    round(coaches.coach_conversion_rate - rates.target_rate, 6)::numeric(9, 6) as coach_gap
from rates
left join coaches
    on
        rates.manager_key = coaches.manager_key
        and rates.canonical_stage = coaches.canonical_stage
        and coaches.coach_rank = 1
where rates.conversion_rate < rates.target_rate
