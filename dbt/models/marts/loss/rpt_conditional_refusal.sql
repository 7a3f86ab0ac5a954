{#- Month a deal entered the conditional refusal (funnel.yaml's timezone) x the manager
    responsible then: how many entries, how many were handed back to work, how many were
    confirmed lost (or won after all), how many still wait for a decision. -#}
with

visits as (
    select * from {{ ref('int_stage_visits') }}
),

funnel_settings as (
    select * from {{ ref('stg_config__settings') }}
),

refusals as (
    select
        refusal.deal_key,
        refusal.entered_at,
        date_trunc('month', refusal.entered_at at time zone funnel_settings.timezone)::date as refusal_month,
        coalesce(resolved_users.manager_key, refusal.source_name || ':' || refusal.responsible_user_id) as manager_key,
        next_visit.stage_kind as next_stage_kind,
        extract(epoch from next_visit.entered_at - refusal.entered_at) / 3600.0 as hours_in_refusal
    from visits as refusal
    cross join funnel_settings
    left join visits as next_visit
        on
            refusal.deal_key = next_visit.deal_key
            and next_visit.visit_number = refusal.visit_number + 1
    left join {{ ref('int_users_resolved') }} as resolved_users
        on
            refusal.source_name = resolved_users.source_name
            and refusal.responsible_user_id = resolved_users.user_id
    where refusal.stage_kind = 'conditional_refusal'
),

by_month as (
    select
        refusal_month,
        manager_key,
        count(*) as entered_refusal,
        count(distinct deal_key) as deals_entered,
        count(*) filter (where next_stage_kind = 'process') as returned_to_work,
        count(*) filter (where next_stage_kind = 'lost') as confirmed_lost,
        count(*) filter (where next_stage_kind = 'won') as won_from_refusal,
        count(*) filter (where next_stage_kind is null) as awaiting_decision,
        round(avg(hours_in_refusal), 4) as avg_hours_to_decision
    from refusals
    group by refusal_month, manager_key
)

select
    by_month.refusal_month,
    by_month.manager_key,
    managers.manager_name,
    by_month.entered_refusal,
    by_month.deals_entered,
    by_month.returned_to_work,
    by_month.confirmed_lost,
    by_month.won_from_refusal,
    by_month.awaiting_decision,
    round(by_month.returned_to_work::numeric / by_month.entered_refusal, 6)::numeric(9, 6) as returned_share,
    round(by_month.confirmed_lost::numeric / by_month.entered_refusal, 6)::numeric(9, 6) as confirmed_lost_share,
    by_month.avg_hours_to_decision
from by_month
left join {{ ref('dim_managers') }} as managers
    on by_month.manager_key = managers.manager_key
