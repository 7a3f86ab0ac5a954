{#- One row per stage change: the deal left `from_stage` for `to_stage` at transitioned_at.
    Incremental by deal: the transitions of a deal whose history changed (a late event, a
    rewritten 1C register row) are replaced as a whole; deals that left the sources are
    deleted. A full refresh gives the same table. -#}
{{
    config(
        materialized='incremental',
        unique_key='deal_key',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=[
            "delete from {{ this }} as already_built where not exists (select 1 from {{ ref('int_stage_visits') }}"
            ~ " as visits where visits.deal_key = already_built.deal_key and visits.visit_number > 1)"
        ],
    )
}}

with

visits as (
    select * from {{ ref('int_stage_visits') }}
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
        greatest(to_visit.loaded_at, from_visit.loaded_at) as source_loaded_at
    from visits as to_visit
    inner join visits as from_visit
        on
            to_visit.deal_key = from_visit.deal_key
            and to_visit.visit_number = from_visit.visit_number + 1
    cross join funnel_settings
    left join users as responsible
        on
            to_visit.source_name = responsible.source_name
            and to_visit.responsible_user_id = responsible.user_id
    left join users as moved_by
        on
            to_visit.source_name = moved_by.source_name
            and to_visit.moved_by_user_id = moved_by.user_id
),

deal_fingerprints as (
    select
        deal_key,
        md5(string_agg(md5(transitions::text), '' order by seq)) as deal_fingerprint
    from transitions
    group by deal_key
),

fingerprinted as (
    select
        transitions.*,
        deal_fingerprints.deal_fingerprint
    from transitions
    inner join deal_fingerprints
        on transitions.deal_key = deal_fingerprints.deal_key
)

select * from fingerprinted
{% if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as already_built
        where
            already_built.deal_key = fingerprinted.deal_key
            and already_built.deal_fingerprint = fingerprinted.deal_fingerprint
    )
{% endif %}
