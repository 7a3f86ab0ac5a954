{#- What the sources did wrong on a deal, one row per (deal, anomaly):
    - unmapped_stage: the deal was in a process stage that the mapping does not know;
    - duplicated_event: amoCRM served one status change twice, under two ids;
    - onec_empty_refs: the 1C deal's responsible or partner is the empty reference;
    - onec_empty_dates: 1C left a stage row's end date empty where the deal had moved on
      (only the current stage of an open deal may have no end). -#}
with

deals as (
    select * from {{ ref('int_deals_unioned') }}
),

unmapped_stage as (
    select
        deal_key,
        'unmapped_stage' as anomaly_type,
        string_agg(distinct coalesce(pipeline_name || ' / ', '') || stage_name, '; ') as details
    from {{ ref('int_stage_visits') }}
    where stage_kind = 'process' and canonical_stage = 'unmapped'
    group by deal_key
),

event_twins as (
    select
        source_name,
        lead_id,
        string_agg(event_id, ', ' order by event_id) as event_ids
    from {{ ref('stg_amocrm__events') }}
    group by
        source_name,
        lead_id,
        pipeline_id_before,
        status_id_before,
        pipeline_id_after,
        status_id_after,
        created_at
    having count(*) > 1
),

duplicated_event as (
    select
        source_name || ':' || lead_id as deal_key,
        'duplicated_event' as anomaly_type,
        string_agg(event_ids, '; ') as details
    from event_twins
    group by source_name, lead_id
),

onec_empty_refs as (
    select
        source_name || ':' || deal_id as deal_key,
        'onec_empty_refs' as anomaly_type,
        concat_ws(
            ', ',
            case when responsible_user_id is null then 'Ответственный_Key' end,
            case when partner_id is null then 'Партнер_Key' end
        ) as details
    from {{ ref('stg_onec__deals') }}
    where responsible_user_id is null or partner_id is null
),

onec_stats as (
    select
        stats.source_name || ':' || stats.deal_id as deal_key,
        stats.stage_id,
        stats.ended_at_local,
        row_number() over (
            partition by stats.source_name, stats.deal_id
            order by coalesce(stats.started_at_local, stats.ended_at_local) desc nulls last, stats.stage_id desc
        ) as recency
    from {{ ref('stg_onec__deal_stage_stats') }} as stats
),

onec_empty_dates as (
    select
        onec_stats.deal_key,
        'onec_empty_dates' as anomaly_type,
        count(*)::text || ' stage rows without ДатаОкончания' as details
    from onec_stats
    inner join deals
        on onec_stats.deal_key = deals.deal_key
    where
        onec_stats.ended_at_local is null
        and not (deals.status = 'open' and onec_stats.recency = 1)
    group by onec_stats.deal_key
),

anomalies as (
    select * from unmapped_stage
    union all
    select * from duplicated_event
    union all
    select * from onec_empty_refs
    union all
    select * from onec_empty_dates
)

select
    anomalies.deal_key || ':' || anomalies.anomaly_type as anomaly_key,
    anomalies.deal_key,
    anomalies.anomaly_type,
    anomalies.details
from anomalies
inner join deals
    on anomalies.deal_key = deals.deal_key
