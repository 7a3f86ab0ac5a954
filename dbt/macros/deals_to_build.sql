{#- The deals an incremental deal-grained model writes, with their inputs' fingerprint
    (int_deal_fingerprints): on a full build every deal with at least `min_visits` stage
    entries; on an incremental one only those whose fingerprint differs from the one the
    model holds, i.e. new deals and deals whose records, history, company or lookups changed.
    The model's rows of those deals are replaced (delete+insert on deal_key). A model built
    before it held fingerprints is rebuilt whole. -#}
{% macro deals_to_build(min_visits=0) %}
    select
        fingerprints.deal_key,
        fingerprints.inputs_fingerprint
    from {{ ref('int_deal_fingerprints') }} as fingerprints
    where
        fingerprints.visit_count >= {{ min_visits }}
        {%- if is_incremental()
            and 'inputs_fingerprint' in adapter.get_columns_in_relation(this) | map(attribute='name') %}
            and not exists (
                select 1
                from {{ this }} as already_built
                where
                    already_built.deal_key = fingerprints.deal_key
                    and already_built.inputs_fingerprint = fingerprints.inputs_fingerprint
            )
        {%- endif %}
{% endmacro %}

{#- A post-hook of the same models: rows whose fingerprint is no longer a deal's current one
    belong to a deal that left the sources, or that now has no rows here (its history shrank
    below `min_visits`); they go. A full build has none. -#}
{% macro delete_outdated_deals() %}
    {%- if is_incremental() %}
        delete from {{ this }} as already_built
        where not exists (
            select 1
            from {{ ref('int_deal_fingerprints') }} as fingerprints
            where
                fingerprints.deal_key = already_built.deal_key
                and fingerprints.inputs_fingerprint = already_built.inputs_fingerprint
        )
    {%- endif %}
{% endmacro %}
