{#- Megaplan deals on the canonical deal shape, before status and mapping. The pipeline is the
    program, the stage its state; the status value is the state's type (positive = won,
    negative = lost). Loss reason: the configured custom field's value (loss_reason_field, by
    API name or title), else, where the funnel names reasons by state (loss_reason_stages),
    the name of the negative state. Loss comment: the configured custom field, else the latest
    comment. The customer is the contractor when it is a company. Closed at: when the deal
    entered its final state, else the state's change time. -#}
with

deals as (
    select * from {{ ref('stg_megaplan__deals') }}
),

comments_ranked as (
    select
        deal_comments.*,
        row_number() over (
            partition by deal_comments.source_name, deal_comments.deal_id
            order by deal_comments.created_at desc, deal_comments.comment_id desc
        ) as comment_rank
    from {{ ref('stg_megaplan__comments') }} as deal_comments
    where nullif(trim(deal_comments.comment_text), '') is not null
),

comment_stats as (
    select
        source_name,
        deal_id,
        max(loaded_at) as loaded_at
    from {{ ref('stg_megaplan__comments') }}
    group by source_name, deal_id
),

last_visits as (
    select
        source_name,
        deal_id,
        entered_at,
        stage_id
    from {{ ref('int_stage_visits') }}
    where source_system = 'megaplan' and is_last_visit
),

-- the custom field the funnel names, per program (a title matches the field of every program)
reason_fields as (
    select distinct on (field_list.source_name, field_list.program_id)
        field_list.source_name,
        field_list.program_id,
        field_list.field_name
    from {{ ref('stg_megaplan__deal_fields') }} as field_list
    inner join {{ ref('stg_config__sources') }} as sources
        on
            field_list.source_name = sources.source_name
            and (
                field_list.field_name = sources.loss_reason_field
                or lower(trim(field_list.field_title)) = lower(trim(sources.loss_reason_field))
            )
    order by field_list.source_name, field_list.program_id, (field_list.field_name = sources.loss_reason_field) desc
)

select
    deals.source_name,
    deals.deal_id,
    coalesce(deals.deal_number, deals.deal_id) as deal_number,
    deals.deal_name,
    deals.program_id as pipeline_id,
    deals.state_id as stage_id,
    states.state_type as status_value,
    deals.manager_user_id as responsible_user_id,
    deals.amount,
    coalesce(deals.currency, funnel_settings.base_currency) as currency,
    deals.created_at,
    case
        when last_visits.stage_id = deals.state_id then last_visits.entered_at
        else deals.state_changed_at
    end as closed_at_recorded,
    case when deals.contractor_type = 'ContractorCompany' then deals.contractor_id end as customer_source_id,
    coalesce(
        nullif(trim(deals.custom_fields ->> reason_fields.field_name), ''),
        case when current_stage.is_loss_reason_stage then current_stage.stage_name end
    ) as loss_reason_raw,
    coalesce(
        nullif(trim(deals.custom_fields ->> sources.comment_field), ''),
        comments_ranked.comment_text
    ) as loss_comment,
    greatest(deals.loaded_at, comment_stats.loaded_at) as loaded_at
from deals
cross join {{ ref('stg_config__settings') }} as funnel_settings
left join {{ ref('stg_config__sources') }} as sources
    on deals.source_name = sources.source_name
left join {{ ref('stg_megaplan__program_states') }} as states
    on
        deals.source_name = states.source_name
        and deals.state_id = states.state_id
left join {{ ref('int_source_stages_mapped') }} as current_stage
    on
        deals.source_name = current_stage.source_name
        and deals.program_id = current_stage.pipeline_id
        and deals.state_id = current_stage.stage_id
left join reason_fields
    on
        deals.source_name = reason_fields.source_name
        and deals.program_id = reason_fields.program_id
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
