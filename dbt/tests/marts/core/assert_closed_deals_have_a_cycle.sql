-- Won and lost deals have a close and a non-negative cycle; open deals have neither.
select
    deal_key,
    status,
    closed_at,
    cycle_days
from {{ ref('fct_deals') }}
where
    (status in ('won', 'lost') and (closed_at is null or cycle_days is null or cycle_days < 0))
    or (status = 'open' and (closed_at is not null or cycle_days is not null))
