{#- The union of one per-system model on the canonical shape: for each system,
    `select '<system>' as source_system, * from int_<system>_<suffix>`. Adding a system is
    adding its name to the list. `extra` is appended to each branch's columns (for a column
    that one branch outside the union has and these do not). -#}
{% macro union_systems(suffix, systems, extra=none) -%}
    {%- for system in systems %}
    select
        '{{ system }}' as source_system,
        *{% if extra %},
        {{ extra }}{% endif %}
    from {{ ref('int_' ~ system ~ '_' ~ suffix) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
