{#- 1C dates carry no zone: they stay local timestamps here (*_local) and become instants in
    the intermediate layer, where the connection's timezone is known. -#}
with

source as (
    select * from {{ source('raw_onec', 'deals') }}
),

renamed as (
    select
        connection_name as source_name,
        id as deal_id,
        record ->> 'Code' as deal_number,
        record ->> 'Description' as deal_name,
        record ->> 'Статус' as deal_status_raw,
        coalesce((record ->> 'Закрыта')::boolean, false) as is_closed,
        {{ onec_ref("record ->> 'ВидСделки_Key'") }} as deal_kind_id,
        {{ onec_ref("record ->> 'Партнер_Key'") }} as partner_id,
        {{ onec_ref("record ->> 'Ответственный_Key'") }} as responsible_user_id,
        {{ onec_ref("record ->> 'ПричинаПроигрышаСделки_Key'") }} as loss_reason_id,
        (record ->> 'ПотенциальнаяСуммаПродажи')::numeric(18, 2) as amount,
        {{ onec_ref("record ->> 'ВалютаПервичногоСпроса_Key'") }} as currency_id,
        (record ->> 'ВероятностьУспешногоЗавершения')::numeric as success_probability,
        {{ onec_local_timestamp("record ->> 'ДатаНачала'") }} as started_at_local,
        {{ onec_local_timestamp("record ->> 'ДатаОкончания'") }} as ended_at_local,
        nullif(record ->> 'Комментарий', '') as comment_text,
        loaded_at
    from source
    where
        not is_deleted
        and coalesce((record ->> 'DeletionMark')::boolean, false) = false
)

select * from renamed
