{#- One row per (lost deal, issue) ever detected. Each run compares the issues found now with
    the table itself: a new issue gets first_detected_at = the run's start; an issue that is
    no longer found (the deal was fixed in the CRM, reopened or deleted) gets resolved_at and
    leaves the open list (is_open = false); one found again is reopened, keeping its first
    detection. full_refresh is off so that `dbt build --full-refresh` keeps this memory; to
    reset it, drop the table. -#}
{{
    config(
        materialized='incremental',
        unique_key=['deal_key', 'issue_type'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        full_refresh=false,
    )
}}

with

lost as (
    select * from {{ ref('fct_lost_deals') }}
),

funnel_settings as (
    select * from {{ ref('stg_config__settings') }}
),

found as (
    select
        lost.deal_key,
        'missing_reason' as issue_type,
        'no loss reason' as details
    from lost
    where lost.loss_reason_raw is null
    union all
    select
        lost.deal_key,
        'unknown_reason' as issue_type,
        'reason not in the mapping: ' || lost.loss_reason_raw as details
    from lost
    where lost.loss_reason_raw is not null and not lost.is_loss_reason_mapped
    union all
    select
        lost.deal_key,
        'missing_comment' as issue_type,
        'comment of ' || lost.loss_comment_length || ' characters' as details
    from lost
    cross join funnel_settings
    where lost.loss_comment_length < funnel_settings.comment_min_chars
    union all
    select
        lost.deal_key,
        'reason_needs_review' as issue_type,
        lost.loss_reason_name || ' without a real comment' as details
    from lost
    cross join funnel_settings
    where lost.is_reason_review_needed and lost.loss_comment_length < funnel_settings.comment_min_chars
    union all
    select
        lost.deal_key,
        'skipped_conditional_refusal' as issue_type,
        'lost from ' || coalesce(lost.lost_at_stage, 'creation') || ' without the conditional refusal' as details
    from lost
    where lost.skipped_conditional_refusal
    union all
    select
        lost.deal_key,
        'lost_too_fast' as issue_type,
        'lost ' || lost.minutes_to_loss || ' minutes after creation' as details
    from lost
    cross join funnel_settings
    where lost.minutes_to_loss < funnel_settings.lost_too_fast_minutes
),

current_issues as (
    select
        found.deal_key,
        found.issue_type,
        found.details,
        lost.source_name,
        lost.deal_id,
        lost.deal_name,
        lost.manager_key,
        lost.manager_name,
        lost.lost_at_stage,
        lost.loss_reason_name,
        lost.amount_base,
        lost.closed_at,
        lost.crm_url
    from found
    inner join lost
        on found.deal_key = lost.deal_key
),

{% if is_incremental() %}

    previous as (
        select * from {{ this }}
    ),

    merged as (
        select
            coalesce(current_issues.deal_key, previous.deal_key) as deal_key,
            coalesce(current_issues.issue_type, previous.issue_type) as issue_type,
            coalesce(current_issues.details, previous.details) as details,
            coalesce(current_issues.source_name, previous.source_name) as source_name,
            coalesce(current_issues.deal_id, previous.deal_id) as deal_id,
            coalesce(current_issues.deal_name, previous.deal_name) as deal_name,
            coalesce(current_issues.manager_key, previous.manager_key) as manager_key,
            coalesce(current_issues.manager_name, previous.manager_name) as manager_name,
            coalesce(current_issues.lost_at_stage, previous.lost_at_stage) as lost_at_stage,
            coalesce(current_issues.loss_reason_name, previous.loss_reason_name) as loss_reason_name,
            coalesce(current_issues.amount_base, previous.amount_base) as amount_base,
            coalesce(current_issues.closed_at, previous.closed_at) as closed_at,
            coalesce(current_issues.crm_url, previous.crm_url) as crm_url,
            coalesce(previous.first_detected_at, {{ as_of_timestamp() }}) as first_detected_at,
            case
                when current_issues.deal_key is not null then null
                else coalesce(previous.resolved_at, {{ as_of_timestamp() }})
            end as resolved_at,
            current_issues.deal_key is not null as is_open
        from current_issues
        full outer join previous
            on
                current_issues.deal_key = previous.deal_key
                and current_issues.issue_type = previous.issue_type
    ),

    changed as (
        select merged.*
        from merged
        left join previous
            on
                merged.deal_key = previous.deal_key
                and merged.issue_type = previous.issue_type
        where
            previous.deal_key is null
            or merged.is_open <> previous.is_open
            or merged.details is distinct from previous.details
            or merged.manager_key is distinct from previous.manager_key
            or merged.manager_name is distinct from previous.manager_name
            or merged.deal_name is distinct from previous.deal_name
            or merged.lost_at_stage is distinct from previous.lost_at_stage
            or merged.loss_reason_name is distinct from previous.loss_reason_name
            or merged.amount_base is distinct from previous.amount_base
            or merged.closed_at is distinct from previous.closed_at
            or merged.crm_url is distinct from previous.crm_url
    )

    select
        deal_key,
        issue_type,
        details,
        source_name,
        deal_id,
        deal_name,
        manager_key,
        manager_name,
        lost_at_stage,
        loss_reason_name,
        amount_base,
        closed_at,
        crm_url,
        first_detected_at,
        resolved_at,
        is_open
    from changed

{% else %}

    first_run as (
        select
            current_issues.*,
            {{ as_of_timestamp() }} as first_detected_at,
            null::timestamptz as resolved_at,
            true as is_open
        from current_issues
    )

    select * from first_run

{% endif %}
