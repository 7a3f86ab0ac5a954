{#- File connections: every entry of a deal into a stage. A file has no ids: a stage's id is
    its name, a pipeline's its name ('' when the export names none). A deal with rows in the
    history files: each row enters its stage at its time (the connection's local time made an
    instant), the first row being the creation; a row repeating the stage before it (a new
    manager) is not a change; a row without a pipeline stays in the deal's. A deal without
    history rows: what the loads saw (stg_file__stage_snapshots). It enters the stage it was
    first seen in at its creation, then every snapshot that shows it in another pipeline or
    stage is an entry at that export's time: a stage passed through between two exports is
    never seen, and a move happened at some time before the export that shows it. -#}
with

deals as (
    select
        file_deals.source_name,
        file_deals.deal_id,
        file_deals.pipeline_name,
        file_deals.manager_name,
        {{ local_instant('file_deals.created_at_local') }} as created_at,
        timezones.source_timezone
    from {{ ref('stg_file__deals') }} as file_deals
    left join {{ ref('int_source_timezones') }} as timezones
        on file_deals.source_name = timezones.source_name
),

history as (
    select
        history_rows.source_name,
        history_rows.deal_id,
        {{ local_instant('history_rows.changed_at_local', 'deals') }} as entered_at,
        coalesce(history_rows.pipeline_name, deals.pipeline_name, '') as pipeline_id,
        history_rows.stage_name as stage_id,
        coalesce(history_rows.manager_name, deals.manager_name) as responsible_user_id,
        history_rows.loaded_at,
        row_number() over (
            partition by history_rows.source_name, history_rows.deal_id
            order by history_rows.changed_at_local, history_rows.file_name, history_rows.row_number
        ) as row_number_in_deal
    from {{ ref('stg_file__stage_history') }} as history_rows
    inner join deals
        on
            history_rows.source_name = deals.source_name
            and history_rows.deal_id = deals.deal_id
),

history_ordered as (
    select
        history.*,
        lag(history.pipeline_id) over (
            partition by history.source_name, history.deal_id order by history.row_number_in_deal
        ) as previous_pipeline_id,
        lag(history.stage_id) over (
            partition by history.source_name, history.deal_id order by history.row_number_in_deal
        ) as previous_stage_id
    from history
),

changes as (
    select
        source_name,
        deal_id,
        entered_at,
        pipeline_id,
        stage_id,
        responsible_user_id,
        null::text as moved_by_user_id,
        case when row_number_in_deal = 1 then 'creation' else 'stage_history' end as visit_origin,
        lpad(row_number_in_deal::text, 20, '0') as tie_breaker,
        loaded_at
    from history_ordered
    where
        previous_stage_id is null
        or previous_stage_id <> stage_id
        or previous_pipeline_id <> pipeline_id
),

snapshots as (
    select
        snapshot_rows.source_name,
        snapshot_rows.deal_id,
        snapshot_rows.observed_at,
        coalesce(snapshot_rows.pipeline_name, '') as pipeline_id,
        snapshot_rows.stage_name as stage_id,
        deals.manager_name,
        deals.created_at,
        snapshot_rows.loaded_at,
        row_number() over (
            partition by snapshot_rows.source_name, snapshot_rows.deal_id
            order by snapshot_rows.observed_at, snapshot_rows.snapshot_id
        ) as snapshot_number
    from {{ ref('stg_file__stage_snapshots') }} as snapshot_rows
    inner join deals
        on
            snapshot_rows.source_name = deals.source_name
            and snapshot_rows.deal_id = deals.deal_id
    where
        snapshot_rows.stage_name is not null
        and not exists (
            select 1
            from history
            where
                history.source_name = snapshot_rows.source_name
                and history.deal_id = snapshot_rows.deal_id
        )
),

snapshots_ordered as (
    select
        snapshots.*,
        lag(snapshots.pipeline_id) over (
            partition by snapshots.source_name, snapshots.deal_id order by snapshots.snapshot_number
        ) as previous_pipeline_id,
        lag(snapshots.stage_id) over (
            partition by snapshots.source_name, snapshots.deal_id order by snapshots.snapshot_number
        ) as previous_stage_id
    from snapshots
),

seen as (
    select
        source_name,
        deal_id,
        case
            when snapshot_number = 1 then least(created_at, observed_at)
            else observed_at
        end as entered_at,
        pipeline_id,
        stage_id,
        manager_name as responsible_user_id,
        null::text as moved_by_user_id,
        case when snapshot_number = 1 then 'creation' else 'snapshot' end as visit_origin,
        lpad(snapshot_number::text, 20, '0') as tie_breaker,
        loaded_at
    from snapshots_ordered
    where
        previous_stage_id is null
        or previous_stage_id <> stage_id
        or previous_pipeline_id <> pipeline_id
)

select * from changes
union all
select * from seen
