{#- Every user of every system (a file connection's users are the manager names its exports
    write), plus the user ids deals point at that no user record describes (so that every
    deal has a manager row). -#}
with

-- file connections: a manager is the name the exports write, in a deal's row or a history row
file_managers as (
    select
        source_name,
        manager_name
    from {{ ref('stg_file__deals') }}
    where manager_name is not null
    union
    select
        source_name,
        manager_name
    from {{ ref('stg_file__stage_history') }}
    where manager_name is not null
),

users as (
    select
        source_name,
        'amocrm' as source_system,
        user_id,
        user_name,
        email,
        is_active,
        true as has_user_record
    from {{ ref('stg_amocrm__users') }}
    union all
    select
        source_name,
        'bitrix24' as source_system,
        user_id,
        user_name,
        email,
        is_active,
        true as has_user_record
    from {{ ref('stg_bitrix24__users') }}
    union all
    select
        source_name,
        'onec' as source_system,
        user_id,
        user_name,
        email,
        is_active,
        true as has_user_record
    from {{ ref('stg_onec__users') }}
    union all
    -- Creatio: a deal's owner is a contact, so a user is keyed by its contact
    select
        creatio_users.source_name,
        'creatio' as source_system,
        creatio_users.contact_id as user_id,
        coalesce(contacts.contact_name, creatio_users.user_login) as user_name,
        creatio_users.email,
        creatio_users.is_active,
        true as has_user_record
    from {{ ref('stg_creatio__users') }} as creatio_users
    left join {{ ref('stg_creatio__contacts') }} as contacts
        on
            creatio_users.source_name = contacts.source_name
            and creatio_users.contact_id = contacts.contact_id
    where creatio_users.contact_id is not null
    union all
    select
        source_name,
        'megaplan' as source_system,
        user_id,
        user_name,
        email,
        is_active,
        true as has_user_record
    from {{ ref('stg_megaplan__employees') }}
    union all
    select
        source_name,
        'rosbiznessoft' as source_system,
        user_id,
        user_name,
        user_email as email,
        is_active,
        true as has_user_record
    from {{ ref('stg_rosbiznessoft__users') }}
    union all
    select
        source_name,
        'file' as source_system,
        manager_name as user_id,
        manager_name as user_name,
        null::text as email,
        true as is_active,
        true as has_user_record
    from file_managers
),

referenced as (
    select distinct
        source_name,
        'amocrm' as source_system,
        responsible_user_id as user_id
    from {{ ref('stg_amocrm__leads') }}
    union
    select distinct
        source_name,
        'bitrix24' as source_system,
        assigned_by_user_id as user_id
    from {{ ref('stg_bitrix24__deals') }}
    union
    select distinct
        source_name,
        'onec' as source_system,
        responsible_user_id as user_id
    from {{ ref('stg_onec__deals') }}
    union
    select distinct
        source_name,
        'onec' as source_system,
        responsible_user_id as user_id
    from {{ ref('stg_onec__deal_stage_stats') }}
    union
    select distinct
        source_name,
        'creatio' as source_system,
        owner_contact_id as user_id
    from {{ ref('stg_creatio__opportunities') }}
    union
    select distinct
        source_name,
        'megaplan' as source_system,
        manager_user_id as user_id
    from {{ ref('stg_megaplan__deals') }}
    union
    select distinct
        source_name,
        'rosbiznessoft' as source_system,
        responsible_user_id as user_id
    from {{ ref('stg_rosbiznessoft__deals') }}
),

unknown as (
    select
        referenced.source_name,
        referenced.source_system,
        referenced.user_id,
        null::text as user_name,
        null::text as email,
        false as is_active,
        false as has_user_record
    from referenced
    left join users
        on
            referenced.source_name = users.source_name
            and referenced.user_id = users.user_id
    where
        referenced.user_id is not null
        and users.user_id is null
)

select * from users
union all
select * from unknown
