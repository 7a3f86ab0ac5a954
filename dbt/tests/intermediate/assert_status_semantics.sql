-- The status semantics are exactly the documented ones: amoCRM 142/143, Bitrix24 S/F,
-- 1C Выиграна/Проиграна, Creatio's final stages read as won/lost.
with

expected (source_system, source_value, status) as (
    values
    ('amocrm', '142', 'won'),
    ('amocrm', '143', 'lost'),
    ('bitrix24', 'S', 'won'),
    ('bitrix24', 'F', 'lost'),
    ('onec', 'Выиграна', 'won'),
    ('onec', 'Проиграна', 'lost'),
    ('creatio', 'won', 'won'),
    ('creatio', 'lost', 'lost'),
    ('megaplan', 'positive', 'won'),
    ('megaplan', 'negative', 'lost'),
    ('rosbiznessoft', 'won', 'won'),
    ('rosbiznessoft', 'lost', 'lost'),
    ('file', 'won', 'won'),
    ('file', 'lost', 'lost')
),

actual as (
    select
        source_system,
        source_value,
        status
    from {{ ref('int_status_semantics') }}
),

differences as (
    (
        select * from expected
        except
        select * from actual
    )
    union all
    (
        select * from actual
        except
        select * from expected
    )
)

select * from differences
