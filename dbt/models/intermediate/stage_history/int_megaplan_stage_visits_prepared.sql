{#- Megaplan: every entry of a deal into a state. The status history has no creation row: the
    deal enters, at its creation, the from-state of its earliest change (or its current state
    when it never changed); then each change enters its to-state. A deal stays in its
    program. The history names who moved the deal; the responsible is the deal's manager. -#}
with

deals as (
    select * from {{ ref('stg_megaplan__deals') }}
),

history as (
    select
        history.*,
        deals.program_id,
        deals.manager_user_id,
        row_number() over (
            partition by history.source_name, history.deal_id
            order by history.changed_at, history.history_id
        ) as change_number
    from {{ ref('stg_megaplan__status_history') }} as history
    inner join deals
        on
            history.source_name = deals.source_name
            and history.deal_id = deals.deal_id
    where history.to_state_id is not null
),

creation as (
    select
        deals.source_name,
        deals.deal_id,
        deals.created_at as entered_at,
        deals.program_id as pipeline_id,
        coalesce(first_change.from_state_id, deals.state_id) as stage_id,
        deals.manager_user_id as responsible_user_id,
        deals.created_by_user_id as moved_by_user_id,
        'creation' as visit_origin,
        '0' as tie_breaker,
        deals.loaded_at
    from deals
    left join history as first_change
        on
            deals.source_name = first_change.source_name
            and deals.deal_id = first_change.deal_id
            and first_change.change_number = 1
),

changes as (
    select
        source_name,
        deal_id,
        changed_at as entered_at,
        program_id as pipeline_id,
        to_state_id as stage_id,
        manager_user_id as responsible_user_id,
        changed_by_user_id as moved_by_user_id,
        'stage_history' as visit_origin,
        lpad(change_number::text, 20, '0') as tie_breaker,
        loaded_at
    from history
)

select * from creation
union all
select * from changes
