-- The loss reports count every lost deal once: by stage, by reason and by manager all add up
-- to fct_lost_deals, which holds every lost deal of fct_deals.
with

lost as (
    select count(*) as lost_deals from {{ ref('fct_lost_deals') }}
),

lost_in_fct_deals as (
    select count(*) as lost_deals
    from {{ ref('fct_deals') }}
    where status = 'lost'
),

by_stage as (
    select coalesce(sum(lost_deals), 0) as lost_deals from {{ ref('rpt_loss_by_stage') }}
),

by_reason as (
    select coalesce(sum(lost_deals), 0) as lost_deals from {{ ref('rpt_loss_by_reason') }}
),

by_manager as (
    select coalesce(sum(lost_deals), 0) as lost_deals from {{ ref('rpt_loss_by_manager') }}
)

select
    lost.lost_deals,
    lost_in_fct_deals.lost_deals as lost_in_fct_deals,
    by_stage.lost_deals as by_stage,
    by_reason.lost_deals as by_reason,
    by_manager.lost_deals as by_manager
from lost
cross join lost_in_fct_deals
cross join by_stage
cross join by_reason
cross join by_manager
where
    lost.lost_deals <> lost_in_fct_deals.lost_deals
    or lost.lost_deals <> by_stage.lost_deals
    or lost.lost_deals <> by_reason.lost_deals
    or lost.lost_deals <> by_manager.lost_deals
