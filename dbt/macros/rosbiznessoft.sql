{#- A RosBiznesSoft date ('Y-m-d H:i:s' or 'Y-m-d', no zone) as a local timestamp; '' and
    MySQL's zero date are empty. -#}
{% macro rbs_local_timestamp(expression) -%}
    case
        when coalesce({{ expression }}, '') not in ('', '0000-00-00', '0000-00-00 00:00:00')
            then ({{ expression }})::timestamp
    end
{%- endmacro %}
