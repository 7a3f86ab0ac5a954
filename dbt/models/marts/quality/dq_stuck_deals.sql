{#- One row per open deal that has sat in its canonical stage longer than the stage's
    max_days, as of the run (or the `as_of` variable). -#}
with

stays as (
    select * from {{ ref('int_canonical_stage_stays') }}
    where deal_status = 'open' and left_at is null
),

stage_list as (
    select * from {{ ref('dim_stages') }}
    where max_days is not null
),

measured as (
    select
        stays.deal_key,
        stays.canonical_stage,
        stays.entered_at,
        stage_list.stage_name,
        stage_list.max_days,
        extract(epoch from {{ as_of_timestamp() }} - stays.entered_at) / 86400.0 as days_in_stage
    from stays
    inner join stage_list
        on stays.canonical_stage = stage_list.stage_code
)

select
    measured.deal_key,
    deals.source_name,
    deals.deal_id,
    deals.deal_name,
    deals.pipeline_name,
    deals.stage_name,
    measured.canonical_stage,
    measured.stage_name as canonical_stage_name,
    measured.entered_at as stage_entered_at,
    round(measured.days_in_stage, 4) as days_in_stage,
    measured.max_days,
    round(measured.days_in_stage - measured.max_days, 4) as days_over_limit,
    deals.manager_key,
    deals.manager_name,
    deals.amount_base,
    deals.crm_url
from measured
inner join {{ ref('fct_deals') }} as deals
    on measured.deal_key = deals.deal_key
where measured.days_in_stage > measured.max_days
