{#- Incremental: each run writes only the deals whose inputs changed (a new deal; a moved,
    closed, edited or re-mapped one: macro deals_to_build) and deletes the deals that left the
    sources. Late and repeated updates are therefore handled, and a full refresh gives the
    same table. The indexes serve the dashboards' filters (pipeline, manager, month) and
    hold the columns they group by, so that a filtered query reads the index only; the
    vacuum after each build keeps the pages visible to such index-only scans. -#}
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
            {'columns': ['deal_key', 'inputs_fingerprint'], 'unique': True},
            {'columns': ['pipeline_name', 'created_month', 'status', 'amount_base', 'furthest_canonical_stage']},
            {'columns': ['manager_key', 'status', 'canonical_stage', 'amount_base', 'current_stage_entered_at']},
            {'columns': ['closed_month', 'status', 'source_name', 'passed_conditional_refusal']},
        ],
    )
}}

with

to_build as (
    {{ deals_to_build() }}
),

deals as (
    select
        deal_key,
        source_name,
        source_system,
        deal_id,
        deal_number,
        deal_name,
        pipeline_name,
        stage_name,
        stage_kind,
        canonical_stage,
        status,
        manager_key,
        manager_name,
        customer_key,
        customer_name,
        amount,
        currency,
        amount_base,
        created_at,
        closed_at,
        cycle_days,
        loss_reason_code,
        loss_reason_name,
        loss_reason_raw,
        is_loss_reason_mapped,
        loss_comment,
        lost_at_pipeline_name,
        lost_at_stage,
        lost_at_canonical_stage,
        passed_conditional_refusal,
        skipped_conditional_refusal,
        furthest_canonical_stage,
        furthest_stage_position,
        has_unmapped_stage_visit,
        current_stage_entered_at,
        created_week,
        created_month,
        closed_month,
        crm_url,
        source_loaded_at,
        inputs_fingerprint
    from {{ ref('int_deals_enriched') }}
    where deal_key in (select to_build.deal_key from to_build)  -- every deal on a full build
)

select * from deals
