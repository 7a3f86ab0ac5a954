{#- One row per person who owns deals, across systems. -#}
with

deals as (
    select
        manager_key,
        count(*) as deals,
        count(*) filter (where status = 'open') as open_deals,
        count(*) filter (where status = 'won') as won_deals,
        count(*) filter (where status = 'lost') as lost_deals,
        min(created_at) as first_deal_at,
        max(created_at) as last_deal_at
    from {{ ref('fct_deals') }}
    group by manager_key
)

select
    managers.manager_key,
    managers.manager_name,
    managers.email as manager_email,
    managers.is_active,
    managers.source_systems,
    managers.source_user_keys,
    coalesce(deals.deals, 0) as deals,
    coalesce(deals.open_deals, 0) as open_deals,
    coalesce(deals.won_deals, 0) as won_deals,
    coalesce(deals.lost_deals, 0) as lost_deals,
    deals.first_deal_at,
    deals.last_deal_at
from {{ ref('int_managers') }} as managers
left join deals
    on managers.manager_key = deals.manager_key
