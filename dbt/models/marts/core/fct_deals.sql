{#- Incremental: each run writes only the deals whose row changed (a new deal, a moved,
    closed, edited or re-mapped one: the fingerprint of the whole row differs) and deletes
    the deals that left the sources. Late and repeated updates are therefore handled, and a
    full refresh gives the same table. -#}
{{
    config(
        materialized='incremental',
        unique_key='deal_key',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=[
            "delete from {{ this }} as already_built where not exists (select 1 from {{ ref('int_deals_enriched') }}"
            ~ " as deals where deals.deal_key = already_built.deal_key)"
        ],
    )
}}

with

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
        source_loaded_at
    from {{ ref('int_deals_enriched') }}
),

fingerprinted as (
    select
        deals.*,
        md5(deals::text) as row_fingerprint
    from deals
)

select * from fingerprinted
{% if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as already_built
        where
            already_built.deal_key = fingerprinted.deal_key
            and already_built.row_fingerprint = fingerprinted.row_fingerprint
    )
{% endif %}
