{#- File connections' deals on the canonical deal shape, before status and mapping. A file has
    no ids but the deal's: the pipeline's id is its name ('' when the export names none), the
    stage's, the manager's and the customer's their names (the customer's INN as written when
    the export names no customer). The status value is the status column read as open / won /
    lost. Local dates become instants in the connection's timezone. Closed at: the export's
    close date, else when the deal entered its current stage. The export has no deal name and
    no number but the deal's id. -#}
with

deals as (
    select
        file_deals.*,
        {{ local_instant('file_deals.created_at_local') }}
            as created_at,
        {{ local_instant('file_deals.closed_at_local') }}
            as closed_at
    from {{ ref('stg_file__deals') }} as file_deals
    left join {{ ref('int_source_timezones') }} as timezones
        on file_deals.source_name = timezones.source_name
),

history_stats as (
    select
        source_name,
        deal_id,
        max(loaded_at) as loaded_at
    from {{ ref('stg_file__stage_history') }}
    group by source_name, deal_id
),

last_visits as (
    select
        source_name,
        deal_id,
        entered_at,
        stage_id
    from {{ ref('int_stage_visits') }}
    where source_system = 'file' and is_last_visit
)

select
    deals.source_name,
    deals.deal_id,
    deals.deal_id as deal_number,
    deals.deal_name,
    coalesce(deals.pipeline_name, '') as pipeline_id,
    deals.stage_name as stage_id,
    deals.status as status_value,
    deals.manager_name as responsible_user_id,
    deals.amount,
    deals.currency,
    deals.created_at,
    coalesce(
        deals.closed_at,
        case when last_visits.stage_id = deals.stage_name then last_visits.entered_at end
    ) as closed_at_recorded,
    coalesce(deals.customer_name, deals.customer_inn_raw) as customer_source_id,
    deals.loss_reason_raw,
    deals.comment_text as loss_comment,
    greatest(deals.loaded_at, history_stats.loaded_at) as loaded_at
from deals
left join history_stats
    on
        deals.source_name = history_stats.source_name
        and deals.deal_id = history_stats.deal_id
left join last_visits
    on
        deals.source_name = last_visits.source_name
        and deals.deal_id = last_visits.deal_id
