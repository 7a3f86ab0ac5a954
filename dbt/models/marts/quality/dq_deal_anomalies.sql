{#- One row per (deal, anomaly of the source's data): unmapped stages visited, status events
    served twice, 1C empty references and empty end dates. For data engineers; the lost-deal
    rule violations the head of sales sees are in dq_lost_deal_issues. -#}
select
    anomalies.anomaly_key,
    anomalies.deal_key,
    anomalies.anomaly_type,
    anomalies.details,
    deals.source_name,
    deals.deal_id,
    deals.deal_name,
    deals.status,
    deals.manager_key,
    deals.manager_name,
    deals.crm_url
from {{ ref('int_deal_anomalies') }} as anomalies
inner join {{ ref('fct_deals') }} as deals
    on anomalies.deal_key = deals.deal_key
