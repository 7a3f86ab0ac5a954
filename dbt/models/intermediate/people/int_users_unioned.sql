{#- Every user of every system, plus the user ids deals point at that no user record
    describes (so that every deal has a manager row). -#}
with

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
