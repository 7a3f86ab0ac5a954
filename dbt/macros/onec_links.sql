{#- The ref of a 1C navigation link (e1cib/data/...?ref=) from an object's GUID: the GUID's
    hex digits without dashes, its groups reordered 4-5-3-2-1, as the 1C client writes it. -#}
{% macro onec_navigation_ref(guid_expression) -%}
    {%- set hex = "replace(" ~ guid_expression ~ ", '-', '')" -%}
    (
        substr({{ hex }}, 17, 4)
        || substr({{ hex }}, 21, 12)
        || substr({{ hex }}, 13, 4)
        || substr({{ hex }}, 9, 4)
        || substr({{ hex }}, 1, 8)
    )
{%- endmacro %}
