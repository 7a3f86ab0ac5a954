{#- Creatio: every entry of a deal into a stage, from OpportunityInStage. Creatio writes a
    zero-length row for every non-final stage a move forward skips: those rows are not visits
    and are dropped. Rows that a move backward marked Historical were visits and are kept. A
    row enters its stage at the moment of the move (CreatedOn; StartDate is that plus the
    stage's number in seconds); a row repeating the stage before it is not a change. A deal
    without rows enters its current stage at creation. No pipelines: pipeline_id ''. -#}
with

opportunities as (
    select * from {{ ref('stg_creatio__opportunities') }}
),

visited as (
    select
        history.*,
        lag(history.stage_id) over (
            partition by history.source_name, history.opportunity_id
            order by history.created_at, history.started_at, history.stage_row_id
        ) as previous_stage_id
    from {{ ref('stg_creatio__stage_history') }} as history
    inner join opportunities
        on
            history.source_name = opportunities.source_name
            and history.opportunity_id = opportunities.opportunity_id
    left join {{ ref('stg_creatio__stages') }} as stage_list
        on
            history.source_name = stage_list.source_name
            and history.stage_id = stage_list.stage_id
    where
        history.stage_id is not null
        and not (history.has_zero_duration and not coalesce(stage_list.is_final, false))
),

changes as (
    select
        source_name,
        opportunity_id as deal_id,
        created_at as entered_at,
        '' as pipeline_id,
        stage_id,
        owner_contact_id as responsible_user_id,
        created_by_contact_id as moved_by_user_id,
        case when previous_stage_id is null then 'creation' else 'stage_history' end as visit_origin,
        to_char(started_at at time zone 'UTC', 'YYYYMMDDHH24MISSUS') || ':' || stage_row_id as tie_breaker,
        loaded_at
    from visited
    where previous_stage_id is null or previous_stage_id <> stage_id
),

without_history as (
    select
        opportunities.source_name,
        opportunities.opportunity_id as deal_id,
        opportunities.created_at as entered_at,
        '' as pipeline_id,
        opportunities.stage_id,
        opportunities.owner_contact_id as responsible_user_id,
        opportunities.created_by_contact_id as moved_by_user_id,
        'creation' as visit_origin,
        '0' as tie_breaker,
        opportunities.loaded_at
    from opportunities
    where
        opportunities.stage_id is not null
        and not exists (
            select 1
            from visited
            where
                visited.source_name = opportunities.source_name
                and visited.opportunity_id = opportunities.opportunity_id
        )
)

select * from changes
union all
select * from without_history
