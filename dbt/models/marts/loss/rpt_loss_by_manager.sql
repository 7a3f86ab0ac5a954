{#- Month of the close (funnel.yaml's timezone) x manager: deals closed, lost, the loss rate,
    the money lost and the manager's share of all the month's losses. -#}
with

closed as (
    select * from {{ ref('fct_deals') }}
    where status in ('won', 'lost')
),

by_manager as (
    select
        closed_month as loss_month,
        manager_key,
        count(*) as closed_deals,
        count(*) filter (where status = 'won') as won_deals,
        count(*) filter (where status = 'lost') as lost_deals,
        coalesce(sum(amount_base) filter (where status = 'lost'), 0) as lost_amount_base,
        coalesce(sum(amount_base) filter (where status = 'won'), 0) as won_amount_base
    from closed
    group by closed_month, manager_key
)

select
    by_manager.loss_month,
    by_manager.manager_key,
    managers.manager_name,
    by_manager.closed_deals,
    by_manager.won_deals,
    by_manager.lost_deals,
    round(by_manager.lost_deals::numeric / by_manager.closed_deals, 6)::numeric(9, 6) as loss_rate,
    by_manager.lost_amount_base,
    by_manager.won_amount_base,
    round(
        by_manager.lost_deals::numeric
        / nullif(sum(by_manager.lost_deals) over (partition by by_manager.loss_month), 0),
        6
    )::numeric(9, 6) as share_of_all_losses,
    round(
        by_manager.lost_amount_base
        / nullif(sum(by_manager.lost_amount_base) over (partition by by_manager.loss_month), 0),
        6
    )::numeric(9, 6) as share_of_lost_amount
from by_manager
left join {{ ref('dim_managers') }} as managers
    on by_manager.manager_key = managers.manager_key
