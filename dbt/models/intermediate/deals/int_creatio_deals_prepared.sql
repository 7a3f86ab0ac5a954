{#- Creatio opportunities on the canonical deal shape, before status and mapping. Creatio has
    one stage list per site and no pipelines (pipeline_id ''); the status value is read from
    the stage: final and successful = won, final alone = lost. The manager is the owner's
    contact (Creatio's users are keyed by their contact). The loss reason is the close reason;
    the loss comment the configured custom column, else Notes. Closed at: when the deal entered
    its final stage, else DueDate. Amounts are in the site's base currency. -#}
with

opportunities as (
    select * from {{ ref('stg_creatio__opportunities') }}
),

last_visits as (
    select
        source_name,
        deal_id,
        entered_at,
        stage_id
    from {{ ref('int_stage_visits') }}
    where source_system = 'creatio' and is_last_visit
)

select
    opportunities.source_name,
    opportunities.opportunity_id as deal_id,
    opportunities.opportunity_id as deal_number,
    opportunities.opportunity_title as deal_name,
    '' as pipeline_id,
    opportunities.stage_id,
    case
        when stage_list.is_final and stage_list.is_successful then 'won'
        when stage_list.is_final then 'lost'
        else 'open'
    end as status_value,
    opportunities.owner_contact_id as responsible_user_id,
    opportunities.amount,
    funnel_settings.base_currency as currency,
    opportunities.created_at,
    case
        when last_visits.stage_id = opportunities.stage_id then last_visits.entered_at
        else opportunities.due_at
    end as closed_at_recorded,
    opportunities.account_id as customer_source_id,
    close_reasons.close_reason_name as loss_reason_raw,
    coalesce(
        nullif({{ custom_field_value('opportunities.custom_fields', 'sources.comment_field') }}, ''),
        nullif(trim(opportunities.notes), '')
    ) as loss_comment,
    opportunities.loaded_at
from opportunities
cross join {{ ref('stg_config__settings') }} as funnel_settings
left join {{ ref('stg_config__sources') }} as sources
    on opportunities.source_name = sources.source_name
left join {{ ref('stg_creatio__stages') }} as stage_list
    on
        opportunities.source_name = stage_list.source_name
        and opportunities.stage_id = stage_list.stage_id
left join {{ ref('stg_creatio__close_reasons') }} as close_reasons
    on
        opportunities.source_name = close_reasons.source_name
        and opportunities.close_reason_id = close_reasons.close_reason_id
left join last_visits
    on
        opportunities.source_name = last_visits.source_name
        and opportunities.opportunity_id = last_visits.deal_id
