{#- The canonical funnel and the codes that are not funnel stages. -#}
with

funnel as (
    select
        stage_code,
        stage_name,
        stage_position,
        target_conversion,
        max_days,
        is_last_stage,
        true as is_funnel_stage,
        lead(stage_code) over (order by stage_position) as next_stage_code
    from {{ ref('stg_config__stages') }}
),

others (stage_code, stage_name) as (
    values
    ('conditional_refusal', 'Условный отказ'),
    ('lost', 'Закрыто и не реализовано'),
    ('unmapped', 'Не сопоставлен с воронкой'),
    ('unknown', 'Неизвестно')
)

select * from funnel
union all
select
    others.stage_code::text as stage_code,
    others.stage_name::text as stage_name,
    null::integer as stage_position,
    null::numeric as target_conversion,
    null::numeric as max_days,
    false as is_last_stage,
    false as is_funnel_stage,
    null::text as next_stage_code
from others
