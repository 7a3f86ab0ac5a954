{#- The moment "now" means in the marts (stuck deals, due dates, issue detection): the run's
    start, or the `as_of` variable (an ISO instant) to rebuild them as of another moment. -#}
{% macro as_of_timestamp() -%}
    {%- if var('as_of', none) -%}
        '{{ var("as_of") }}'::timestamptz
    {%- else -%}
        '{{ run_started_at.isoformat() }}'::timestamptz
    {%- endif -%}
{%- endmacro %}
