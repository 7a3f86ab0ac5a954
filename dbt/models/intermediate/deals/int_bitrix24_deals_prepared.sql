{#- Bitrix24 deals on the canonical deal shape, before status and mapping.
    Loss reason: where the funnel names reasons by failure stage (loss_reason_stages), the
    name of that stage; else the configured enumeration field (loss_reason_field), its item
    id read through crm.deal.fields. Loss comment: the configured field if any, else the
    latest timeline comment, else COMMENTS. Closed at: when the deal entered its final stage
    (CLOSEDATE is only a day). -#}
with

deals as (
    select * from {{ ref('stg_bitrix24__deals') }}
),

comments_ranked as (
    select
        timeline_comments.*,
        row_number() over (
            partition by timeline_comments.source_name, timeline_comments.deal_id
            order by timeline_comments.created_at desc, timeline_comments.comment_id desc
        ) as comment_rank
    from {{ ref('stg_bitrix24__timeline_comments') }} as timeline_comments
    where nullif(trim(timeline_comments.comment_text), '') is not null
),

comment_stats as (
    select
        source_name,
        deal_id,
        max(loaded_at) as loaded_at
    from {{ ref('stg_bitrix24__timeline_comments') }}
    group by source_name, deal_id
),

last_visits as (
    select
        source_name,
        deal_id,
        entered_at,
        pipeline_id,
        stage_id
    from {{ ref('int_stage_visits') }}
    where source_system = 'bitrix24' and is_last_visit
),

with_fields as (
    select
        deals.*,
        sources.loss_reason_field,
        sources.comment_field,
        funnel_settings.base_currency,
        {{ custom_field_value('deals.custom_fields', 'sources.loss_reason_field') }} as loss_reason_value
    from deals
    left join {{ ref('stg_config__sources') }} as sources
        on deals.source_name = sources.source_name
    cross join {{ ref('stg_config__settings') }} as funnel_settings
)

select
    with_fields.source_name,
    with_fields.deal_id,
    with_fields.deal_id as deal_number,
    with_fields.deal_title as deal_name,
    with_fields.category_id as pipeline_id,
    with_fields.stage_id,
    with_fields.stage_semantic_id as status_value,
    with_fields.assigned_by_user_id as responsible_user_id,
    with_fields.opportunity as amount,
    coalesce(with_fields.currency_id, with_fields.base_currency) as currency,
    with_fields.created_at,
    case
        when
            last_visits.pipeline_id = with_fields.category_id
            and last_visits.stage_id = with_fields.stage_id
            then last_visits.entered_at
        else coalesce(with_fields.moved_at, with_fields.close_date_at)
    end as closed_at_recorded,
    with_fields.company_id as customer_source_id,
    case
        when current_stage.is_loss_reason_stage then current_stage.stage_name
        else coalesce(items.item_value, nullif(nullif(with_fields.loss_reason_value, ''), '0'))
    end as loss_reason_raw,
    coalesce(
        nullif({{ custom_field_value('with_fields.custom_fields', 'with_fields.comment_field') }}, ''),
        comments_ranked.comment_text,
        with_fields.comments_text
    ) as loss_comment,
    greatest(with_fields.loaded_at, comment_stats.loaded_at) as loaded_at
from with_fields
left join {{ ref('int_source_stages_mapped') }} as current_stage
    on
        with_fields.source_name = current_stage.source_name
        and with_fields.category_id = current_stage.pipeline_id
        and with_fields.stage_id = current_stage.stage_id
left join {{ ref('stg_bitrix24__deal_field_items') }} as items
    on
        with_fields.source_name = items.source_name
        and with_fields.loss_reason_field = items.field_name
        and with_fields.loss_reason_value = items.item_id
left join comments_ranked
    on
        with_fields.source_name = comments_ranked.source_name
        and with_fields.deal_id = comments_ranked.deal_id
        and comments_ranked.comment_rank = 1
left join comment_stats
    on
        with_fields.source_name = comment_stats.source_name
        and with_fields.deal_id = comment_stats.deal_id
left join last_visits
    on
        with_fields.source_name = last_visits.source_name
        and with_fields.deal_id = last_visits.deal_id
