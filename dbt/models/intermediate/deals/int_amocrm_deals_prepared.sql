{#- amoCRM leads on the canonical deal shape, before status and mapping. The loss reason is
    the account's reason of the lead's loss_reason_id; the loss comment is the lead's latest
    common note (or the configured custom field, where comments live in one). amoCRM keeps
    a price in the account's currency, taken as the company's base currency. -#}
with

leads as (
    select * from {{ ref('stg_amocrm__leads') }}
),

notes_ranked as (
    select
        notes.*,
        row_number() over (
            partition by notes.source_name, notes.lead_id
            order by notes.created_at desc, notes.note_id::bigint desc
        ) as note_rank
    from {{ ref('stg_amocrm__notes') }} as notes
    where
        notes.note_type = 'common'
        and nullif(trim(notes.note_text), '') is not null
),

note_stats as (
    select
        source_name,
        lead_id,
        max(loaded_at) as loaded_at
    from {{ ref('stg_amocrm__notes') }}
    group by source_name, lead_id
)

select
    leads.source_name,
    leads.lead_id as deal_id,
    leads.lead_id as deal_number,
    leads.lead_name as deal_name,
    leads.pipeline_id,
    leads.status_id as stage_id,
    leads.status_id as status_value,
    leads.responsible_user_id,
    leads.price as amount,
    funnel_settings.base_currency as currency,
    leads.created_at,
    leads.closed_at as closed_at_recorded,
    leads.company_id as customer_source_id,
    coalesce(
        reasons.loss_reason_name,
        leads.embedded_loss_reason_name,
        '#' || leads.loss_reason_id
    ) as loss_reason_raw,
    coalesce(
        jsonb_path_query_first(
            leads.custom_fields,
            '$[*] ? (@.field_name == $f || @.field_code == $f || @.field_id.string() == $f).values[0].value',
            jsonb_build_object('f', sources.comment_field)
        ) #>> '{}',
        notes_ranked.note_text
    ) as loss_comment,
    greatest(leads.loaded_at, note_stats.loaded_at) as loaded_at
from leads
left join {{ ref('stg_amocrm__loss_reasons') }} as reasons
    on
        leads.source_name = reasons.source_name
        and leads.loss_reason_id = reasons.loss_reason_id
left join notes_ranked
    on
        leads.source_name = notes_ranked.source_name
        and leads.lead_id = notes_ranked.lead_id
        and notes_ranked.note_rank = 1
left join note_stats
    on
        leads.source_name = note_stats.source_name
        and leads.lead_id = note_stats.lead_id
left join {{ ref('stg_config__sources') }} as sources
    on leads.source_name = sources.source_name
cross join {{ ref('stg_config__settings') }} as funnel_settings
