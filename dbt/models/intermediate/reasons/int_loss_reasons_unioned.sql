{#- Every loss reason a source offers (amoCRM and 1C catalogs, the items of the configured
    Bitrix24 enumeration field, the Bitrix24 failure stages that name a reason) and every
    reason text lost deals carry, with the canonical code the mapping gives it. A reason the
    mapping does not know lands on settings' unmapped reason. -#}
with

offered as (
    select
        source_name,
        loss_reason_name as reason_raw,
        'catalog' as reason_origin
    from {{ ref('stg_amocrm__loss_reasons') }}
    union
    select
        items.source_name,
        items.item_value as reason_raw,
        'enumeration_field' as reason_origin
    from {{ ref('stg_bitrix24__deal_field_items') }} as items
    inner join {{ ref('stg_config__sources') }} as sources
        on
            items.source_name = sources.source_name
            and items.field_name = sources.loss_reason_field
    union
    select
        source_name,
        stage_name as reason_raw,
        'failure_stage' as reason_origin
    from {{ ref('int_source_stages_mapped') }}
    where is_loss_reason_stage
    union
    select
        source_name,
        loss_reason_name as reason_raw,
        'catalog' as reason_origin
    from {{ ref('stg_onec__loss_reasons') }}
    union
    select
        source_name,
        close_reason_name as reason_raw,
        'catalog' as reason_origin
    from {{ ref('stg_creatio__close_reasons') }}
    union
    select
        source_name,
        loss_reason_name as reason_raw,
        'catalog' as reason_origin
    from {{ ref('stg_rosbiznessoft__loss_reasons') }}
    union
    select
        field_values.source_name,
        field_values.field_value as reason_raw,
        'enumeration_field' as reason_origin
    from {{ ref('stg_megaplan__deal_field_values') }} as field_values
    inner join {{ ref('stg_megaplan__deal_fields') }} as field_list
        on
            field_values.source_name = field_list.source_name
            and field_values.field_name = field_list.field_name
    inner join {{ ref('stg_config__sources') }} as sources
        on
            field_list.source_name = sources.source_name
            and (
                field_list.field_name = sources.loss_reason_field
                or lower(trim(field_list.field_title)) = lower(trim(sources.loss_reason_field))
            )
),

seen as (
    select
        source_name,
        loss_reason_raw as reason_raw,
        count(*) as lost_deals,
        min(closed_at) as first_lost_at,
        max(closed_at) as last_lost_at
    from {{ ref('int_deals_unioned') }}
    where loss_reason_raw is not null
    group by source_name, loss_reason_raw
),

all_reasons as (
    select
        source_name,
        reason_raw,
        min(reason_origin) as reason_origin
    from offered
    where reason_raw is not null
    group by source_name, reason_raw
    union all
    select
        seen.source_name,
        seen.reason_raw,
        'deal' as reason_origin
    from seen
    where not exists (
        select 1
        from offered
        where
            offered.source_name = seen.source_name
            and offered.reason_raw = seen.reason_raw
    )
),

reason_mappings as (
    select
        source_name,
        lower(trim(source_reason)) as source_reason_key,
        min(reason_code) as reason_code
    from {{ ref('stg_config__reason_mappings') }}
    group by source_name, lower(trim(source_reason))
)

select
    all_reasons.source_name || ':' || all_reasons.reason_raw as source_reason_key,
    all_reasons.source_name,
    sources.source_system,
    all_reasons.reason_raw,
    all_reasons.reason_origin,
    coalesce(reason_mappings.reason_code, funnel_settings.unmapped_reason_code) as reason_code,
    reason_mappings.reason_code is not null as is_mapped,
    coalesce(seen.lost_deals, 0) as lost_deals,
    seen.first_lost_at,
    seen.last_lost_at
from all_reasons
cross join {{ ref('stg_config__settings') }} as funnel_settings
left join {{ ref('stg_config__sources') }} as sources
    on all_reasons.source_name = sources.source_name
left join reason_mappings
    on
        all_reasons.source_name = reason_mappings.source_name
        and lower(trim(all_reasons.reason_raw)) = reason_mappings.source_reason_key
left join seen
    on
        all_reasons.source_name = seen.source_name
        and all_reasons.reason_raw = seen.reason_raw
