{#- RosBiznesSoft deals on the canonical deal shape, before status and mapping. The pipeline is
    the deal type, the status value the stage's result (open / won / lost, read through the
    connection's stage_results). Dates are the installation's local time, made instants in
    the connection's timezone. Loss reason: the reason field's entry in the loss reasons
    structure; loss comment: the latest comment on the deal, else the deal's own comment
    field. Closed at: when the deal entered its final stage, else its close date. -#}
with

deals as (
    select
        rbs_deals.*,
        {{ local_instant('rbs_deals.created_at_local') }}
            as created_at,
        {{ local_instant('rbs_deals.closed_at_local') }}
            as closed_at,
        funnel_settings.base_currency
    from {{ ref('stg_rosbiznessoft__deals') }} as rbs_deals
    cross join {{ ref('stg_config__settings') }} as funnel_settings
    left join {{ ref('int_source_timezones') }} as timezones
        on rbs_deals.source_name = timezones.source_name
),

comments_ranked as (
    select
        deal_comments.*,
        row_number() over (
            partition by deal_comments.source_name, deal_comments.deal_id
            order by deal_comments.commented_at_local desc, deal_comments.comment_id desc
        ) as comment_rank
    from {{ ref('stg_rosbiznessoft__comments') }} as deal_comments
    where nullif(trim(deal_comments.comment_text), '') is not null
),

comment_stats as (
    select
        source_name,
        deal_id,
        max(loaded_at) as loaded_at
    from {{ ref('stg_rosbiznessoft__comments') }}
    group by source_name, deal_id
),

last_visits as (
    select
        source_name,
        deal_id,
        entered_at,
        stage_id
    from {{ ref('int_stage_visits') }}
    where source_system = 'rosbiznessoft' and is_last_visit
)

select
    deals.source_name,
    deals.deal_id,
    coalesce(deals.deal_number, deals.deal_id) as deal_number,
    deals.deal_name,
    coalesce(stage_list.pipeline_id, deals.pipeline_id, '') as pipeline_id,
    deals.stage_id,
    stage_list.stage_status as status_value,
    deals.responsible_user_id,
    deals.amount,
    coalesce(deals.currency, deals.base_currency) as currency,
    deals.created_at,
    case
        when last_visits.stage_id = deals.stage_id then last_visits.entered_at
        else deals.closed_at
    end as closed_at_recorded,
    deals.company_id as customer_source_id,
    reasons.loss_reason_name as loss_reason_raw,
    coalesce(comments_ranked.comment_text, nullif(trim(deals.comment_text), '')) as loss_comment,
    greatest(deals.loaded_at, comment_stats.loaded_at) as loaded_at
from deals
left join {{ ref('stg_rosbiznessoft__stages') }} as stage_list
    on
        deals.source_name = stage_list.source_name
        and deals.stage_id = stage_list.stage_id
left join {{ ref('stg_rosbiznessoft__loss_reasons') }} as reasons
    on
        deals.source_name = reasons.source_name
        and deals.loss_reason_id = reasons.loss_reason_id
left join comments_ranked
    on
        deals.source_name = comments_ranked.source_name
        and deals.deal_id = comments_ranked.deal_id
        and comments_ranked.comment_rank = 1
left join comment_stats
    on
        deals.source_name = comment_stats.source_name
        and deals.deal_id = comment_stats.deal_id
left join last_visits
    on
        deals.source_name = last_visits.source_name
        and deals.deal_id = last_visits.deal_id
