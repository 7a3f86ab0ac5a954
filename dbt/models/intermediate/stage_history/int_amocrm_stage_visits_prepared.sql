{#- amoCRM: every entry of a lead into a status. The first is the lead's creation (in the
    status the first change left, or the current one when it never changed); then one per
    lead_status_changed event. An event served twice under two ids (same lead, before,
    after and instant) counts once. The responsible manager at each entry is the lead's
    responsible user as seen: amoCRM's status events name who moved, not who is responsible. -#}
with

leads as (
    select * from {{ ref('stg_amocrm__leads') }}
),

events_ranked as (
    select
        events.*,
        row_number() over (
            partition by
                events.source_name,
                events.lead_id,
                events.pipeline_id_before,
                events.status_id_before,
                events.pipeline_id_after,
                events.status_id_after,
                events.created_at
            order by events.event_id
        ) as twin_rank
    from {{ ref('stg_amocrm__events') }} as events
),

events as (
    select
        events_ranked.*,
        row_number() over (
            partition by events_ranked.source_name, events_ranked.lead_id
            order by events_ranked.created_at, events_ranked.event_id
        ) as event_rank
    from events_ranked
    where events_ranked.twin_rank = 1
),

creations as (
    select
        leads.source_name,
        leads.lead_id as deal_id,
        leads.created_at as entered_at,
        coalesce(first_events.pipeline_id_before, leads.pipeline_id) as pipeline_id,
        coalesce(first_events.status_id_before, leads.status_id) as stage_id,
        leads.responsible_user_id,
        leads.created_by_user_id as moved_by_user_id,
        'creation' as visit_origin,
        '0' as tie_breaker,
        leads.loaded_at
    from leads
    left join events as first_events
        on
            leads.source_name = first_events.source_name
            and leads.lead_id = first_events.lead_id
            and first_events.event_rank = 1
),

moves as (
    select
        events.source_name,
        events.lead_id as deal_id,
        events.created_at as entered_at,
        events.pipeline_id_after as pipeline_id,
        events.status_id_after as stage_id,
        leads.responsible_user_id,
        events.created_by_user_id as moved_by_user_id,
        'status_event' as visit_origin,
        '1:' || events.event_id as tie_breaker,
        events.loaded_at
    from events
    inner join leads
        on
            events.source_name = leads.source_name
            and events.lead_id = leads.lead_id
)

select * from creations
union all
select * from moves
