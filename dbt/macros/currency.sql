{#- An ISO 4217 letter code from what a source writes: a letter code already, or the numeric
    code that 1C keeps in Catalog_Валюты.Code. -#}
{% macro iso_currency_code(code_expression, name_expression) -%}
    case
        when upper(trim({{ name_expression }})) ~ '^[A-Z]{3}$' then upper(trim({{ name_expression }}))
        when trim({{ code_expression }}) ~ '^[A-Z]{3}$' then trim({{ code_expression }})
        else
            case trim({{ code_expression }})
                when '643' then 'RUB'
                when '840' then 'USD'
                when '978' then 'EUR'
                when '156' then 'CNY'
                when '398' then 'KZT'
                when '933' then 'BYN'
                when '980' then 'UAH'
                when '826' then 'GBP'
                when '756' then 'CHF'
                when '392' then 'JPY'
                when '949' then 'TRY'
                when '051' then 'AMD'
                when '860' then 'UZS'
                when '417' then 'KGS'
                when '944' then 'AZN'
                when '981' then 'GEL'
                when '784' then 'AED'
                when '356' then 'INR'
            end
    end
{%- endmacro %}
