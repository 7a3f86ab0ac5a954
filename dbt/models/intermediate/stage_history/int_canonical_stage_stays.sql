{#- A deal's time in each canonical stage: consecutive entries into source stages with the
    same canonical stage are one stay (amoCRM "Первичный контакт" then "Квалификация" are one
    stay in `contact`). A stay ends when the next one begins, or when the deal closed; the
    current stay of an open deal has no end. -#}
with

visits as (
    select
        visits.*,
        lag(visits.canonical_stage) over (
            partition by visits.deal_key order by visits.visit_number
        ) as previous_canonical_stage
    from {{ ref('int_stage_visits') }} as visits
),

marked as (
    select
        visits.*,
        case when coalesce(visits.previous_canonical_stage, '') <> visits.canonical_stage then 1 else 0 end
            as starts_stay
    from visits
),

numbered as (
    select
        marked.*,
        sum(marked.starts_stay) over (
            partition by marked.deal_key order by marked.visit_number
        ) as stay_number
    from marked
),

stays as (
    select
        deal_key,
        stay_number,
        min(canonical_stage) as canonical_stage,
        min(canonical_position) as canonical_position,
        min(entered_at) as entered_at,
        max(visit_number) as last_visit_number,
        min(visit_number) as first_visit_number,
        count(*) as visits
    from numbered
    group by deal_key, stay_number
),

entries as (
    select
        deal_key,
        visit_number,
        source_name,
        responsible_user_id,
        left_at
    from {{ ref('int_stage_visits') }}
)

select
    stays.deal_key || ':' || stays.stay_number as stay_key,
    stays.deal_key,
    stays.stay_number,
    stays.canonical_stage,
    stays.canonical_position,
    stays.entered_at,
    coalesce(last_entries.left_at, deals.closed_at) as left_at,
    stays.visits,
    deals.status as deal_status,
    first_entries.source_name,
    first_entries.responsible_user_id
from stays
inner join {{ ref('int_deals_unioned') }} as deals
    on stays.deal_key = deals.deal_key
inner join entries as first_entries
    on
        stays.deal_key = first_entries.deal_key
        and stays.first_visit_number = first_entries.visit_number
inner join entries as last_entries
    on
        stays.deal_key = last_entries.deal_key
        and stays.last_visit_number = last_entries.visit_number
