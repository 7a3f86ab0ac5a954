-- A deal that reached a stage reached every earlier one: for each week and manager, no stage
-- has more deals than the stage before it, and reached_next_stage equals the next stage's
-- reached_stage.
with

rows_ as (
    select
        week_start,
        manager_key,
        stage_position,
        reached_stage,
        reached_next_stage,
        lead(reached_stage) over (partition by week_start, manager_key order by stage_position) as next_reached,
        lead(stage_position) over (partition by week_start, manager_key order by stage_position) as next_position
    from {{ ref('rpt_funnel_conversion') }}
)

select *
from rows_
where
    reached_next_stage > reached_stage
    or (next_position = stage_position + 1 and reached_next_stage <> next_reached)
    or (next_position is null and reached_next_stage > 0)
