{#- Every system's deals on one shape. The status (won / lost / open) is derived here, once,
    from int_status_semantics; every later model reuses it. closed_at is kept for won and lost
    deals only; cycle_days = closed_at - created_at in fractional days. -#}
with

deals as (
    {{ union_systems(
        'deals_prepared',
        ['amocrm', 'bitrix24', 'onec', 'creatio', 'megaplan', 'rosbiznessoft', 'file']
    ) }}
),

with_status as (
    select
        deals.*,
        coalesce(semantics.status, 'open') as status
    from deals
    left join {{ ref('int_status_semantics') }} as semantics
        on
            deals.source_system = semantics.source_system
            and deals.status_value = semantics.source_value
),

closed as (
    select
        with_status.*,
        case when with_status.status in ('won', 'lost') then with_status.closed_at_recorded end as closed_at
    from with_status
)

select
    source_name || ':' || deal_id as deal_key,
    source_name,
    source_system,
    deal_id,
    deal_number,
    deal_name,
    pipeline_id,
    stage_id,
    source_name || ':' || pipeline_id || ':' || stage_id as stage_key,
    status_value,
    status,
    responsible_user_id,
    amount,
    currency,
    created_at,
    closed_at,
    round(extract(epoch from closed_at - created_at) / 86400.0, 4)::numeric(12, 4) as cycle_days,
    customer_source_id,
    case when status = 'lost' then loss_reason_raw end as loss_reason_raw,
    case when status = 'lost' then loss_comment end as loss_comment,
    loaded_at
from closed
