{#- Casts shared by the staging models: how each source writes empty values and instants. -#}

{#- amoCRM: unix seconds (UTC) to timestamptz; null stays null. -#}
{% macro amocrm_timestamp(expression) -%}
    to_timestamp(nullif({{ expression }}, '')::bigint)
{%- endmacro %}

{#- Bitrix24: strings with their offset ("2024-09-02T18:37:18+03:00"); "" is null. -#}
{% macro bitrix24_timestamp(expression) -%}
    nullif({{ expression }}, '')::timestamptz
{%- endmacro %}

{#- Bitrix24: "Y"/"N" (and JSON booleans) to boolean. -#}
{% macro bitrix24_flag(expression) -%}
    (upper(coalesce({{ expression }}, '')) in ('Y', 'TRUE', '1'))
{%- endmacro %}

{#- Bitrix24 writes "0" or "" for a reference that points nowhere. -#}
{% macro bitrix24_ref(expression) -%}
    nullif(nullif({{ expression }}, ''), '0')
{%- endmacro %}

{#- 1C: the empty reference is the all-zero GUID. -#}
{% macro onec_ref(expression) -%}
    nullif(nullif({{ expression }}, '00000000-0000-0000-0000-000000000000'), '')
{%- endmacro %}

{#- 1C: zone-less local date-time; the empty date 0001-01-01T00:00:00 is null. -#}
{% macro onec_local_timestamp(expression) -%}
    nullif(nullif({{ expression }}, '0001-01-01T00:00:00'), '')::timestamp
{%- endmacro %}

{#- The value of field `field_expression` in an array of {"key": ..., "value": ...} (as staging
    keeps Bitrix24's UF_* fields), as text. -#}
{% macro custom_field_value(array_expression, field_expression) -%}
    jsonb_path_query_first(
        {{ array_expression }}, '$[*] ? (@.key == $f).value', jsonb_build_object('f', {{ field_expression }})
    ) #>> '{}'
{%- endmacro %}
