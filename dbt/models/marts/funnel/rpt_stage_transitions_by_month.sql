{#- Month of the change (funnel.yaml's timezone) x the stage entered x the manager responsible
    for the deal then: how many stage changes, how many of them backward. The dashboards'
    transition counts read this instead of aggregating fct_stage_transitions. -#}
select
    transitioned_month,
    to_canonical_stage,
    manager_key,
    count(*) as transitions,
    count(*) filter (where is_backward) as backward_transitions
from {{ ref('fct_stage_transitions') }}
group by transitioned_month, to_canonical_stage, manager_key
