{#- One row per deal with everything the marts need: the current stage and its canonical
    stage, the milestones of its history, the manager and the customer resolved across
    systems, the loss reason mapped, the amount in the base currency, and the link that
    opens the deal in its CRM.
    Incremental: a run rewrites only the deals whose inputs changed (macro deals_to_build). -#}
{{
    config(
        materialized='incremental',
        unique_key='deal_key',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook=["{{ delete_outdated_deals() }}"],
        indexes=[{'columns': ['deal_key', 'inputs_fingerprint'], 'unique': True}],
    )
}}

with

to_build as (
    {{ deals_to_build() }}
),

deals as (
    select * from {{ ref('int_deals_unioned') }}
    {%- if is_incremental() %}
        where deal_key in (select to_build.deal_key from to_build)
    {%- endif %}
),

funnel_settings as (
    select * from {{ ref('stg_config__settings') }}
),

reason_mappings as (
    select
        source_name,
        lower(trim(source_reason)) as source_reason_key,
        min(reason_code) as reason_code
    from {{ ref('stg_config__reason_mappings') }}
    group by source_name, lower(trim(source_reason))
),

pipelines as (
    select distinct
        source_name,
        pipeline_id,
        pipeline_name
    from {{ ref('int_source_stages_mapped') }}
),

with_rate_dates as (
    select
        deals.*,
        ((coalesce(deals.closed_at, deals.created_at)) at time zone funnel_settings.timezone)::date as rate_date
    from deals
    cross join funnel_settings
),

-- the rate of each (currency, day) the deals need: the latest one on or before the day
-- (the range join runs over these few pairs, not over every deal)
rate_days as (
    select distinct
        with_rate_dates.currency as currency_code,
        with_rate_dates.rate_date
    from with_rate_dates
    union
    select distinct
        funnel_settings.base_currency as currency_code,
        with_rate_dates.rate_date
    from with_rate_dates
    cross join funnel_settings
),

day_rates as (
    select
        rate_days.currency_code,
        rate_days.rate_date,
        case when rate_days.currency_code = 'RUB' then 1 else rates.rate_to_rub end as rate_to_rub
    from rate_days
    left join {{ ref('int_exchange_rates') }} as rates
        on
            rate_days.currency_code = rates.currency_code
            and rate_days.rate_date >= rates.valid_from
            and (rate_days.rate_date < rates.valid_to or rates.valid_to is null)
),

joined as (
    select
        deals.deal_key,
        deals.source_name,
        deals.source_system,
        deals.deal_id,
        deals.deal_number,
        deals.deal_name,
        deals.pipeline_id,
        coalesce(current_stage.pipeline_name, pipelines.pipeline_name) as pipeline_name,
        deals.stage_id,
        coalesce(current_stage.stage_name, deals.stage_id) as stage_name,
        coalesce(current_stage.stage_kind, 'process') as stage_kind,
        coalesce(current_stage.canonical_stage, 'unmapped') as canonical_stage,
        deals.status_value as source_status,
        deals.status,
        deals.responsible_user_id,
        coalesce(
            resolved_users.manager_key,
            deals.source_name || ':' || deals.responsible_user_id
        ) as manager_key,
        deals.customer_source_id,
        coalesce(
            customers.customer_key,
            deals.source_name || ':' || deals.customer_source_id
        ) as customer_key,
        customers.customer_name,
        deals.amount,
        deals.currency,
        case
            when deals.currency = funnel_settings.base_currency then deals.amount
            else
                round(deals.amount * deal_rates.rate_to_rub / base_rates.rate_to_rub, 2)
        end::numeric(18, 2) as amount_base,
        deals.created_at,
        deals.closed_at,
        deals.cycle_days,
        deals.loss_reason_raw,
        case
            when deals.loss_reason_raw is not null
                then coalesce(reason_mappings.reason_code, funnel_settings.unmapped_reason_code)
        end as loss_reason_code,
        deals.loss_reason_raw is not null and reason_mappings.reason_code is not null as is_loss_reason_mapped,
        deals.loss_comment,
        milestones.lost_at_pipeline_name,
        milestones.lost_at_stage,
        milestones.lost_at_canonical_stage,
        milestones.passed_conditional_refusal,
        milestones.skipped_conditional_refusal,
        milestones.furthest_stage_position,
        milestones.furthest_canonical_stage,
        milestones.has_unmapped_stage_visit,
        milestones.stage_visit_count,
        milestones.current_stage_entered_at,
        case deals.source_system
            when 'amocrm'
                then rtrim(sources.crm_base_url, '/') || '/leads/detail/' || deals.deal_id
            when 'bitrix24'
                then rtrim(sources.crm_base_url, '/') || '/crm/deal/details/' || deals.deal_id || '/'
            when 'onec'
                then
                    regexp_replace(rtrim(sources.crm_base_url, '/'), '/odata/standard\.odata$', '')
                    || '/#e1cib/data/Справочник.СделкиСКлиентами?ref='
                    || {{ onec_navigation_ref('deals.deal_id') }}
        end as crm_url,
        funnel_settings.timezone as report_timezone,
        deals.loaded_at as source_loaded_at,
        to_build.inputs_fingerprint
    from with_rate_dates as deals
    cross join funnel_settings
    left join to_build
        on deals.deal_key = to_build.deal_key
    left join {{ ref('int_source_stages_mapped') }} as current_stage
        on deals.stage_key = current_stage.stage_key
    left join pipelines
        on
            deals.source_name = pipelines.source_name
            and deals.pipeline_id = pipelines.pipeline_id
    left join {{ ref('int_deal_milestones') }} as milestones
        on deals.deal_key = milestones.deal_key
    left join {{ ref('int_users_resolved') }} as resolved_users
        on
            deals.source_name = resolved_users.source_name
            and deals.responsible_user_id = resolved_users.user_id
    left join {{ ref('int_customers_unioned') }} as customers
        on
            deals.source_name = customers.source_name
            and deals.customer_source_id = customers.customer_source_id
    left join reason_mappings
        on
            deals.source_name = reason_mappings.source_name
            and lower(trim(deals.loss_reason_raw)) = reason_mappings.source_reason_key
    left join day_rates as deal_rates
        on
            deals.currency = deal_rates.currency_code
            and deals.rate_date = deal_rates.rate_date
    left join day_rates as base_rates
        on
            funnel_settings.base_currency = base_rates.currency_code
            and deals.rate_date = base_rates.rate_date
    left join {{ ref('stg_config__sources') }} as sources
        on deals.source_name = sources.source_name
)

select
    joined.*,
    managers.manager_name,
    managers.email as manager_email,
    reasons.reason_name as loss_reason_name,
    date_trunc('week', joined.created_at at time zone joined.report_timezone)::date as created_week,
    date_trunc('month', joined.created_at at time zone joined.report_timezone)::date as created_month,
    date_trunc('month', joined.closed_at at time zone joined.report_timezone)::date as closed_month
from joined
left join {{ ref('int_managers') }} as managers
    on joined.manager_key = managers.manager_key
left join {{ ref('stg_config__loss_reasons') }} as reasons
    on joined.loss_reason_code = reasons.reason_code
