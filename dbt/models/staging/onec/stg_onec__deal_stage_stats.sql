{#- InformationRegister_СтатистикаСделокСКлиентами: ONE row per (deal, stage), overwritten
    when the deal re-enters a stage; not a transition log. -#}
with

source as (
    select * from {{ source('raw_onec', 'deal_stage_stats') }}
),

renamed as (
    select
        connection_name as source_name,
        id as stat_id,
        {{ onec_ref("record ->> 'Сделка_Key'") }} as deal_id,
        {{ onec_ref("record ->> 'ЭтапПроцесса_Key'") }} as stage_id,
        {{ onec_local_timestamp("record ->> 'ДатаНачала'") }} as started_at_local,
        {{ onec_local_timestamp("record ->> 'ДатаОкончания'") }} as ended_at_local,
        (record ->> 'Продолжительность')::bigint as duration_seconds,
        (record ->> 'Потенциал')::numeric(18, 2) as potential_amount,
        nullif(record ->> 'Результат', '') as result_status_raw,
        {{ onec_ref("record ->> 'Ответственный_Key'") }} as responsible_user_id,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
