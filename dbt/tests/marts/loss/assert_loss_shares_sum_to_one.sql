-- Every month's shares of lost deals add up to 1 in the by-stage, by-reason and by-manager reports.
with

shares as (
    select
        'rpt_loss_by_stage' as report,
        loss_month,
        sum(lost_deals_share) as total_share
    from {{ ref('rpt_loss_by_stage') }}
    group by loss_month
    union all
    select
        'rpt_loss_by_reason' as report,
        loss_month,
        sum(lost_deals_share) as total_share
    from {{ ref('rpt_loss_by_reason') }}
    group by loss_month
    union all
    select
        'rpt_loss_by_manager' as report,
        loss_month,
        sum(share_of_all_losses) as total_share
    from {{ ref('rpt_loss_by_manager') }}
    group by loss_month
    having sum(lost_deals) > 0
)

select *
from shares
where abs(total_share - 1) > 0.0001
