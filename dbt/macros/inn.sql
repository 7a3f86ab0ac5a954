{#- The Russian taxpayer id (ИНН): digits only, and valid only with correct check digits.
    10 digits: a legal entity, one check digit; 12 digits: an individual, two. -#}

{% macro _inn_check_digit(digits, weights) -%}
    (
        (
            {%- for weight in weights %}
            {{ weight }} * substr({{ digits }}, {{ loop.index }}, 1)::integer{{ ' +' if not loop.last }}
            {%- endfor %}
        ) % 11
    ) % 10
{%- endmacro %}

{#- The INN as digits when it is a possible one, else null. -#}
{% macro normalized_inn(expression) -%}
    {%- set digits = "regexp_replace(coalesce(" ~ expression ~ ", ''), '[^0-9]', '', 'g')" -%}
    case
        when {{ digits }} ~ '^0+$' then null
        when length({{ digits }}) = 10
            and {{ _inn_check_digit(digits, [2, 4, 10, 3, 5, 9, 4, 6, 8]) }}
            = substr({{ digits }}, 10, 1)::integer
            then {{ digits }}
        when length({{ digits }}) = 12
            and {{ _inn_check_digit(digits, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) }}
            = substr({{ digits }}, 11, 1)::integer
            and {{ _inn_check_digit(digits, [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) }}
            = substr({{ digits }}, 12, 1)::integer
            then {{ digits }}
    end
{%- endmacro %}
