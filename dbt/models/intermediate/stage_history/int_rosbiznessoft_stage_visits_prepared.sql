{#- RosBiznesSoft: every entry of a deal into a stage, from the installation's stage history
    (its first row is the creation), in time order; a row repeating the stage before it (a
    new responsible) is not a change. Local times become instants in the connection's
    timezone. An installation without history, or a deal without rows: the current stage at
    creation. The pipeline is the stage's deal type. -#}
with

deals as (
    select
        rbs_deals.*,
        {{ local_instant('rbs_deals.created_at_local') }}
            as created_at
    from {{ ref('stg_rosbiznessoft__deals') }} as rbs_deals
    left join {{ ref('int_source_timezones') }} as timezones
        on rbs_deals.source_name = timezones.source_name
),

history as (
    select
        history_rows.source_name,
        history_rows.deal_id,
        history_rows.history_id,
        {{ local_instant('history_rows.changed_at_local') }} as entered_at,
        coalesce(stage_list.pipeline_id, deals.pipeline_id, '') as pipeline_id,
        history_rows.stage_id,
        coalesce(history_rows.user_id, deals.responsible_user_id) as responsible_user_id,
        history_rows.loaded_at,
        lag(history_rows.stage_id) over (
            partition by history_rows.source_name, history_rows.deal_id
            order by history_rows.changed_at_local, history_rows.history_id
        ) as previous_stage_id,
        row_number() over (
            partition by history_rows.source_name, history_rows.deal_id
            order by history_rows.changed_at_local, history_rows.history_id
        ) as row_number_in_deal
    from {{ ref('stg_rosbiznessoft__stage_history') }} as history_rows
    inner join deals
        on
            history_rows.source_name = deals.source_name
            and history_rows.deal_id = deals.deal_id
    left join {{ ref('stg_rosbiznessoft__stages') }} as stage_list
        on
            history_rows.source_name = stage_list.source_name
            and history_rows.stage_id = stage_list.stage_id
    left join {{ ref('int_source_timezones') }} as timezones
        on history_rows.source_name = timezones.source_name
    where history_rows.stage_id is not null and history_rows.changed_at_local is not null
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
    from history
    where previous_stage_id is null or previous_stage_id <> stage_id
),

without_history as (
    select
        deals.source_name,
        deals.deal_id,
        deals.created_at as entered_at,
        coalesce(deals.pipeline_id, '') as pipeline_id,
        deals.stage_id,
        deals.responsible_user_id,
        null::text as moved_by_user_id,
        'creation' as visit_origin,
        '0' as tie_breaker,
        deals.loaded_at
    from deals
    where
        deals.stage_id is not null
        and not exists (
            select 1
            from history
            where
                history.source_name = deals.source_name
                and history.deal_id = deals.deal_id
        )
)

select * from changes
union all
select * from without_history
