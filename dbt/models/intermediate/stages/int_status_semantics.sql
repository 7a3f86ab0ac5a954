{#- The one place where won and lost are read from each system's own semantics: amoCRM
    statuses 142/143 (in every pipeline), Bitrix24 stage semantics S/F, 1C's Статус, Creatio's
    final stages (won when also successful, read as 'won' / 'lost' by its models), Megaplan's
    state types, RosBiznesSoft's stage results and a file's status column (read as 'won' /
    'lost' by the extractors).
    Anything else is open. Stages and deals both take their status from here. -#}
with

semantics (source_system, source_value, status) as (
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
)

select
    source_system::text as source_system,
    source_value::text as source_value,
    status::text as status
from semantics
