{#- One row per stage change: the deal left `from_stage` for `to_stage` at transitioned_at.
    Incremental by deal: the transitions of a deal whose inputs changed (a late event, a
    rewritten 1C register row, a re-mapped stage: macro deals_to_build) are replaced as a
    whole; deals that left the sources are deleted. A full refresh gives the same table.
    The indexes serve the dashboards' month and manager filters with the columns they group
    by (index-only scans; the vacuum after each build keeps the pages visible to them). -#}
{{
    config(
        materialized='incremental',
        unique_key='deal_key',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=[
            "{{ delete_outdated_deals() }}",
            {'sql': 'vacuum analyze {{ this }}', 'transaction': False},
        ],
        indexes=[
            {'columns': ['deal_key', 'inputs_fingerprint']},
            {'columns': ['transitioned_month', 'to_canonical_stage', 'manager_key', 'is_backward']},
            {'columns': ['manager_key', 'transitioned_month', 'from_canonical_stage', 'hours_in_from_stage']},
        ],
    )
}}

with

to_build as (
    {{ deals_to_build(min_visits=2) }}
),

visits as (
    select * from {{ ref('int_stage_visits') }}
    {%- if is_incremental() %}
        where deal_key in (select to_build.deal_key from to_build)
    {%- endif %}
),

users as (
    select * from {{ ref('int_users_resolved') }}
),

funnel_settings as (
    select * from {{ ref('stg_config__settings') }}
),

transitions as (
    select
        to_visit.visit_key as transition_key,
        to_visit.deal_key,
        to_visit.source_name,
        to_visit.source_system,
        to_visit.deal_id,
        to_visit.visit_number - 1 as seq,
        from_visit.pipeline_name as from_pipeline_name,
        from_visit.stage_id as from_stage_id,
        from_visit.stage_name as from_stage,
        from_visit.stage_kind as from_stage_kind,
        from_visit.canonical_stage as from_canonical_stage,
        to_visit.pipeline_name as to_pipeline_name,
        to_visit.stage_id as to_stage_id,
        to_visit.stage_name as to_stage,
        to_visit.stage_kind as to_stage_kind,
        to_visit.canonical_stage as to_canonical_stage,
        from_visit.entered_at as from_stage_entered_at,
        to_visit.entered_at as transitioned_at,
        round(extract(epoch from to_visit.entered_at - from_visit.entered_at) / 3600.0, 4)::numeric(14, 4)
            as hours_in_from_stage,
        to_visit.pipeline_id <> from_visit.pipeline_id as is_pipeline_change,
        coalesce(
            to_visit.canonical_position < from_visit.canonical_position,
            false
        ) as is_backward,
        coalesce(
            responsible.manager_key,
            to_visit.source_name || ':' || to_visit.responsible_user_id
        ) as manager_key,
        moved_by.manager_key as moved_by_manager_key,
        date_trunc('week', to_visit.entered_at at time zone funnel_settings.timezone)::date as transitioned_week,
        date_trunc('month', to_visit.entered_at at time zone funnel_settings.timezone)::date as transitioned_month,
        greatest(to_visit.loaded_at, from_visit.loaded_at) as source_loaded_at,
        to_build.inputs_fingerprint
    from visits as to_visit
    inner join visits as from_visit
        on
            to_visit.deal_key = from_visit.deal_key
            and to_visit.visit_number = from_visit.visit_number + 1
    cross join funnel_settings
    left join to_build
        on to_visit.deal_key = to_build.deal_key
    left join users as responsible
        on
            to_visit.source_name = responsible.source_name
            and to_visit.responsible_user_id = responsible.user_id
    left join users as moved_by
        on
            to_visit.source_name = moved_by.source_name
            and to_visit.moved_by_user_id = moved_by.user_id
)

select * from transitions
