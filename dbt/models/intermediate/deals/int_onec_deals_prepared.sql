{#- 1C deals on the canonical deal shape, before status and mapping. A 1C deal has no
    current-stage field: its stage is the last one of the stage register. Dates become
    instants in the connection's timezone. When Ответственный is the empty reference, the
    manager of the deal's last register row stands in. The currency is the ISO code of
    Catalog_Валюты. -#}
with

deals as (
    select * from {{ ref('stg_onec__deals') }}
),

visit_stats as (
    select
        source_name,
        deal_id,
        min(entered_at) as first_entered_at,
        max(register_ended_at) as last_ended_at,
        max(loaded_at) as loaded_at
    from {{ ref('int_stage_visits') }}
    where source_system = 'onec'
    group by source_name, deal_id
),

last_visits as (
    select
        source_name,
        deal_id,
        entered_at,
        stage_id,
        responsible_user_id
    from {{ ref('int_stage_visits') }}
    where source_system = 'onec' and is_last_visit
)

select
    deals.source_name,
    deals.deal_id,
    deals.deal_number,
    deals.deal_name,
    coalesce(deals.deal_kind_id, '') as pipeline_id,
    last_visits.stage_id,
    deals.deal_status_raw as status_value,
    coalesce(deals.responsible_user_id, last_visits.responsible_user_id) as responsible_user_id,
    deals.amount,
    coalesce(currencies.currency_code, funnel_settings.base_currency) as currency,
    coalesce(
        {{ local_instant('deals.started_at_local') }},
        visit_stats.first_entered_at
    ) as created_at,
    coalesce(
        {{ local_instant('deals.ended_at_local') }},
        visit_stats.last_ended_at,
        last_visits.entered_at
    ) as closed_at_recorded,
    deals.partner_id as customer_source_id,
    reasons.loss_reason_name as loss_reason_raw,
    deals.comment_text as loss_comment,
    greatest(deals.loaded_at, visit_stats.loaded_at) as loaded_at
from deals
left join last_visits
    on
        deals.source_name = last_visits.source_name
        and deals.deal_id = last_visits.deal_id
left join visit_stats
    on
        deals.source_name = visit_stats.source_name
        and deals.deal_id = visit_stats.deal_id
left join {{ ref('stg_onec__currencies') }} as currencies
    on
        deals.source_name = currencies.source_name
        and deals.currency_id = currencies.currency_id
left join {{ ref('stg_onec__loss_reasons') }} as reasons
    on
        deals.source_name = reasons.source_name
        and deals.loss_reason_id = reasons.loss_reason_id
left join {{ ref('int_source_timezones') }} as timezones
    on deals.source_name = timezones.source_name
cross join {{ ref('stg_config__settings') }} as funnel_settings
