{#- One row per person (manager_key). The name is funnel.yaml's person name, else the name
    of the person's active user record (the first connection's, by name). -#}
with

users as (
    select * from {{ ref('int_users_resolved') }}
),

ranked as (
    select
        users.*,
        row_number() over (
            partition by users.manager_key
            order by
                (users.person_name is not null) desc,
                users.has_user_record desc,
                users.is_active desc,
                users.source_name asc,
                users.user_id asc
        ) as name_rank
    from users
)

select
    manager_key,
    max(case when name_rank = 1 then coalesce(person_name, user_name, user_key) end) as manager_name,
    max(case when name_rank = 1 then email end) as email,
    bool_or(is_active) as is_active,
    count(*) as source_user_count,
    string_agg(user_key, ', ' order by user_key) as source_user_keys,
    string_agg(distinct source_system, ', ') as source_systems
from ranked
group by manager_key
