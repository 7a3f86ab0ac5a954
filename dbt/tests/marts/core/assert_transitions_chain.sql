-- A deal's transitions form a chain: each one leaves the stage the one before it entered, at
-- or after that moment.
with

chained as (
    select
        deal_key,
        seq,
        from_stage_id,
        from_stage_entered_at,
        lag(to_stage_id) over (partition by deal_key order by seq) as previous_to_stage_id,
        lag(transitioned_at) over (partition by deal_key order by seq) as previous_transitioned_at,
        transitioned_at
    from {{ ref('fct_stage_transitions') }}
)

select *
from chained
where
    previous_to_stage_id is not null
    and (
        from_stage_id <> previous_to_stage_id
        or from_stage_entered_at <> previous_transitioned_at
        or transitioned_at < previous_transitioned_at
    )
