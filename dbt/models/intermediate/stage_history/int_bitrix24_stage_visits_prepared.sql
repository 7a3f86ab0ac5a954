{#- Bitrix24: every entry of a deal into a stage, from the stage history in time order. A
    row that repeats the stage before it is not a change and is dropped. A deal without
    history enters its current stage at creation. The history records no user: the
    responsible manager at each entry is the deal's ASSIGNED_BY_ID as seen. -#}
with

deals as (
    select * from {{ ref('stg_bitrix24__deals') }}
),

history as (
    select
        history.*,
        deals.assigned_by_user_id,
        lag(history.category_id || '|' || history.stage_id) over (
            partition by history.source_name, history.deal_id
            order by history.created_at, history.history_sequence
        ) as previous_stage
    from {{ ref('stg_bitrix24__stage_history') }} as history
    inner join deals
        on
            history.source_name = deals.source_name
            and history.deal_id = deals.deal_id
),

changes as (
    select
        source_name,
        deal_id,
        created_at as entered_at,
        category_id as pipeline_id,
        stage_id,
        assigned_by_user_id as responsible_user_id,
        null::text as moved_by_user_id,
        case when history_type_id = 1 then 'creation' else 'stage_history' end as visit_origin,
        lpad(history_sequence::text, 20, '0') as tie_breaker,
        loaded_at
    from history
    where previous_stage is null or previous_stage <> category_id || '|' || stage_id
),

without_history as (
    select
        deals.source_name,
        deals.deal_id,
        deals.created_at as entered_at,
        deals.category_id as pipeline_id,
        deals.stage_id,
        deals.assigned_by_user_id as responsible_user_id,
        deals.created_by_user_id as moved_by_user_id,
        'creation' as visit_origin,
        '0' as tie_breaker,
        deals.loaded_at
    from deals
    where not exists (
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
