{#- Each configured connection's timezone: its own (sources.yaml `timezone`), else the
    company's (funnel.yaml). The local times of 1C, RosBiznesSoft and export files become
    instants in it: join this model as `timezones` and write {{ '{{' }} local_instant(column) {{ '}}' }}. -#}
select
    sources.source_name,
    coalesce(sources.source_timezone, funnel_settings.timezone) as source_timezone
from {{ ref('stg_config__sources') }} as sources
cross join {{ ref('stg_config__settings') }} as funnel_settings
