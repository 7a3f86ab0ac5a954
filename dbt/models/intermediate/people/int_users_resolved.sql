{#- Each source user resolved to one person (manager_key) across systems:
    1. funnel.yaml `people` naming the user as "<connection>:<user id>";
    2. else an e-mail (case-insensitive) of such a person, or of a user listed under one;
    3. else the user's own e-mail, so that one e-mail is one person in every system;
    4. else the user alone: "<connection>:<user id>". -#}
with

users as (
    select * from {{ ref('int_users_unioned') }}
),

people as (
    select
        person_name,
        lower(email) as email,
        source_name,
        user_id
    from {{ ref('stg_config__people') }}
),

by_id as (
    select
        users.source_name,
        users.user_id,
        min(people.person_name) as person_name
    from users
    inner join people
        on
            users.source_name = people.source_name
            and users.user_id = people.user_id
    group by users.source_name, users.user_id
),

-- every e-mail known for a person: its own, and those of the users listed under it
person_emails as (
    select distinct
        person_name,
        email
    from people
    where email is not null
    union
    select distinct
        by_id.person_name,
        users.email
    from by_id
    inner join users
        on
            by_id.source_name = users.source_name
            and by_id.user_id = users.user_id
    where users.email is not null
),

distinct_people as (
    select distinct
        person_name,
        email
    from people
),

person_emails_ranked as (
    select
        distinct_people.person_name,
        person_emails.email,
        -- the person's own e-mail first, then the smallest of its users'
        row_number() over (
            partition by distinct_people.person_name
            order by (person_emails.email = distinct_people.email) desc nulls last, person_emails.email
        ) as email_rank
    from distinct_people
    left join person_emails
        on distinct_people.person_name = person_emails.person_name
),

person_keys as (
    select
        person_name,
        coalesce(
            min(email) filter (where email_rank = 1),
            'person:' || lower(person_name)
        ) as person_key
    from person_emails_ranked
    group by person_name
),

by_email as (
    select
        users.source_name,
        users.user_id,
        min(person_emails.person_name) as person_name
    from users
    inner join person_emails
        on users.email = person_emails.email
    group by users.source_name, users.user_id
),

resolved as (
    select
        users.*,
        coalesce(by_id.person_name, by_email.person_name) as person_name
    from users
    left join by_id
        on
            users.source_name = by_id.source_name
            and users.user_id = by_id.user_id
    left join by_email
        on
            users.source_name = by_email.source_name
            and users.user_id = by_email.user_id
)

select
    resolved.source_name || ':' || resolved.user_id as user_key,
    resolved.source_name,
    resolved.source_system,
    resolved.user_id,
    resolved.user_name,
    resolved.email,
    resolved.is_active,
    resolved.has_user_record,
    resolved.person_name,
    coalesce(
        person_keys.person_key,
        resolved.email,
        resolved.source_name || ':' || resolved.user_id
    ) as manager_key
from resolved
left join person_keys
    on resolved.person_name = person_keys.person_name
