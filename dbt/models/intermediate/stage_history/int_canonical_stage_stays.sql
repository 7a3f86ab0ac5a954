{#- A deal's time in each canonical stage: consecutive entries into source stages with the
    same canonical stage are one stay (amoCRM "Первичный контакт" then "Квалификация" are one
    stay in `contact`). A stay ends when the next one begins, or when the deal closed; the
    current stay of an open deal has no end.
    Incremental: a run rewrites the stays of the deals whose inputs changed (macro
    deals_to_build). -#}
{{
    config(
        materialized='incremental',
        unique_key='deal_key',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=["{{ delete_outdated_deals() }}"],
        indexes=[{'columns': ['deal_key', 'inputs_fingerprint']}],
    )
}}

with

to_build as (
    {{ deals_to_build(min_visits=1) }}
),

visits as (
    select
        visits.*,
        lag(visits.canonical_stage) over (
            partition by visits.deal_key order by visits.visit_number
        ) as previous_canonical_stage
    from {{ ref('int_stage_visits') }} as visits
    {%- if is_incremental() %}
        where visits.deal_key in (select to_build.deal_key from to_build)
    {%- endif %}
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
        (array_agg(left_at order by visit_number desc))[1] as last_entry_left_at,
        min(source_name) as source_name,
        (array_agg(responsible_user_id order by visit_number))[1] as responsible_user_id,
        count(*) as visits
    from numbered
    group by deal_key, stay_number
),

deals as (
    select * from {{ ref('int_deals_unioned') }}
    {%- if is_incremental() %}
        where deal_key in (select to_build.deal_key from to_build)
    {%- endif %}
)

select
    stays.deal_key || ':' || stays.stay_number as stay_key,
    stays.deal_key,
    stays.stay_number,
    stays.canonical_stage,
    stays.canonical_position,
    stays.entered_at,
    coalesce(stays.last_entry_left_at, deals.closed_at) as left_at,
    stays.visits,
    deals.status as deal_status,
    stays.source_name,
    stays.responsible_user_id,
    to_build.inputs_fingerprint
from stays
inner join deals
    on stays.deal_key = deals.deal_key
left join to_build
    on stays.deal_key = to_build.deal_key
