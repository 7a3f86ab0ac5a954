{#- One row per deal in the sources: a fingerprint of everything the deal-grained models read
    for it. The deal's own row; its stage entries (how many, and the latest time one of them
    was landed: an added, rewritten or vanished entry changes one or the other); its company's
    key and name; the exchange rates its base-currency amount is converted with (a new day's
    rate changes only the deals of that day on); the lookups every deal goes through (stage
    and reason mappings, the funnel's settings, users and managers); and the code of the
    models and seeds. A changed mapping or a deployed change of a model therefore changes
    every deal's fingerprint (a changed macro alone does not: build with --full-refresh then).
    An incremental build rebuilds a deal when its fingerprint differs from the one the model
    holds (macro deals_to_build). -#}
{%- set lookups = [
    'int_source_stages_mapped',
    'int_users_resolved',
    'int_managers',
    'stg_config__stages',
    'stg_config__settings',
    'stg_config__sources',
    'stg_config__reason_mappings',
    'stg_config__loss_reasons',
] -%}
{%- set code_checksums = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values() | sort(attribute='unique_id') -%}
        {%- if node.resource_type in ('model', 'seed') -%}
            {%- do code_checksums.append(node.checksum.checksum) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

with

visit_summary as (
    select
        deal_key,
        count(*) as visit_count,
        max(loaded_at) as visits_loaded_at
    from {{ ref('int_stage_visits') }}
    group by deal_key
),

funnel_settings as (
    select * from {{ ref('stg_config__settings') }}
),

deals as (
    select
        deals.deal_key,
        deals.source_name,
        deals.customer_source_id,
        md5(deals::text) as row_fingerprint,
        deals.currency,
        funnel_settings.base_currency,
        ((coalesce(deals.closed_at, deals.created_at)) at time zone funnel_settings.timezone)::date as rate_date
    from {{ ref('int_deals_unioned') }} as deals
    cross join funnel_settings
),

-- the rate in force on each (currency, day) the deals need, as int_deals_enriched reads it
-- (the range join runs over these few pairs, not over every deal)
day_rates as (
    select
        rate_days.currency_code,
        rate_days.rate_date,
        rates.rate_key || '=' || rates.rate_to_rub as rate_used
    from (
        select distinct
            currency as currency_code,
            rate_date
        from deals
        union
        select distinct
            base_currency as currency_code,
            rate_date
        from deals
    ) as rate_days
    inner join {{ ref('int_exchange_rates') }} as rates
        on
            rate_days.currency_code = rates.currency_code
            and rate_days.rate_date >= rates.valid_from
            and (rate_days.rate_date < rates.valid_to or rates.valid_to is null)
),

-- materialized: computed once, not for every deal
lookups as materialized (
    select
        md5(concat(
            '{{ local_md5(code_checksums | join(",")) }}',
            {%- for lookup in lookups %}
                (
                    select string_agg(md5(lookup_rows::text), '' order by md5(lookup_rows::text))
                    from {{ ref(lookup) }} as lookup_rows
                ){{ ',' if not loop.last }}
            {%- endfor %}
        )) as lookups_fingerprint
)

select
    deals.deal_key,
    coalesce(visit_summary.visit_count, 0) as visit_count,
    md5(row(
        deals.row_fingerprint,
        visit_summary.visit_count,
        visit_summary.visits_loaded_at,
        customers.customer_key,
        customers.customer_name,
        deal_rates.rate_used,
        base_rates.rate_used,
        lookups.lookups_fingerprint
    )::text) as inputs_fingerprint
from deals
cross join lookups
left join visit_summary
    on deals.deal_key = visit_summary.deal_key
left join day_rates as deal_rates
    on
        deals.currency = deal_rates.currency_code
        and deals.rate_date = deal_rates.rate_date
left join day_rates as base_rates
    on
        deals.base_currency = base_rates.currency_code
        and deals.rate_date = base_rates.rate_date
left join {{ ref('int_customers_unioned') }} as customers
    on
        deals.source_name = customers.source_name
        and deals.customer_source_id = customers.customer_source_id
