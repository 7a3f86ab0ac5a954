{#- Month a deal entered a canonical stage (funnel.yaml's timezone) x stage x the manager
    responsible then: how long the stays lasted against the stage's limit (max_days), and the
    open deals sitting in it now past the limit. A stay joins consecutive source stages of
    the same canonical stage; it ends when the next stay begins or the deal closes. -#}
with

stays as (
    select * from {{ ref('int_canonical_stage_stays') }}
),

stage_list as (
    select * from {{ ref('dim_stages') }}
    where is_funnel_stage
),

funnel_settings as (
    select * from {{ ref('stg_config__settings') }}
),

measured as (
    select
        stays.*,
        date_trunc('month', stays.entered_at at time zone funnel_settings.timezone)::date as entered_month,
        coalesce(resolved_users.manager_key, stays.source_name || ':' || stays.responsible_user_id) as manager_key,
        extract(epoch from coalesce(stays.left_at, {{ as_of_timestamp() }}) - stays.entered_at) / 86400.0
            as days_in_stage,
        stage_list.max_days
    from stays
    cross join funnel_settings
    inner join stage_list
        on stays.canonical_stage = stage_list.stage_code
    left join {{ ref('int_users_resolved') }} as resolved_users
        on
            stays.source_name = resolved_users.source_name
            and stays.responsible_user_id = resolved_users.user_id
),

by_month as (
    select
        entered_month,
        canonical_stage,
        manager_key,
        max(max_days) as max_days,
        count(*) as stays,
        count(*) filter (where left_at is not null) as completed_stays,
        round(avg(days_in_stage) filter (where left_at is not null), 4) as avg_days_in_stage,
        round(
            (percentile_cont(0.5) within group (order by days_in_stage) filter (where left_at is not null))::numeric,
            4
        ) as median_days_in_stage,
        count(*) filter (where left_at is not null and days_in_stage > max_days) as completed_over_limit,
        count(*) filter (where left_at is null) as open_now,
        count(*) filter (where left_at is null and days_in_stage > max_days) as stuck_now
    from measured
    group by entered_month, canonical_stage, manager_key
)

select
    by_month.entered_month,
    by_month.canonical_stage,
    stage_list.stage_name,
    stage_list.stage_position,
    by_month.manager_key,
    managers.manager_name,
    by_month.max_days,
    by_month.stays,
    by_month.completed_stays,
    by_month.avg_days_in_stage,
    by_month.median_days_in_stage,
    by_month.completed_over_limit,
    round(
        by_month.completed_over_limit::numeric / nullif(by_month.completed_stays, 0), 6
    )::numeric(9, 6) as over_limit_share,
    by_month.open_now,
    by_month.stuck_now
from by_month
inner join stage_list
    on by_month.canonical_stage = stage_list.stage_code
left join {{ ref('dim_managers') }} as managers
    on by_month.manager_key = managers.manager_key
