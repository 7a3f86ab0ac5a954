{#- Exchange rates to roubles from every 1C connection, by ISO currency code, each valid from
    its day until the next one of the same currency. Where two 1C bases publish a rate for
    the same day, the first connection (by name) wins. -#}
with

rates as (
    select
        currencies.currency_code,
        rates.rate_date,
        rates.rate / rates.multiplier as rate_to_rub,
        rates.source_name,
        row_number() over (
            partition by currencies.currency_code, rates.rate_date
            order by rates.source_name
        ) as source_rank
    from {{ ref('stg_onec__exchange_rates') }} as rates
    inner join {{ ref('stg_onec__currencies') }} as currencies
        on
            rates.source_name = currencies.source_name
            and rates.currency_id = currencies.currency_id
    where
        currencies.currency_code is not null
        and rates.rate > 0
)

select
    currency_code || ':' || rate_date as rate_key,
    currency_code,
    rate_date as valid_from,
    lead(rate_date) over (partition by currency_code order by rate_date) as valid_to,
    rate_to_rub,
    source_name
from rates
where source_rank = 1
