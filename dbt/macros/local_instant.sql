{#- A source's local timestamp as an instant: in the connection's timezone (the model joins
    int_source_timezones as `timezones`), else the company's. -#}
{% macro local_instant(local_column, timezones='timezones') -%}
    {{ local_column }} at time zone coalesce(
        {{ timezones }}.source_timezone, (select company.timezone from {{ ref('stg_config__settings') }} as company)
    )
{%- endmacro %}
