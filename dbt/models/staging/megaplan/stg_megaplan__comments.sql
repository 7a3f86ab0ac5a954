{#- Deal comments. Megaplan stores a comment as HTML (the web editor's): comment_text is the
    text a person reads — line breaks kept, tags dropped, entities decoded. Dropped (deleted)
    comments are left out. -#}
with

source as (
    select * from {{ source('raw_megaplan', 'comments') }}
),

plain as (
    select
        source.*,
        regexp_replace(
            regexp_replace(source.record ->> 'content', '<br\s*/?>|</p>\s*<p[^>]*>', E'\n', 'gi'),
            '<[^>]*>',
            '',
            'g'
        ) as untagged
    from source
),

renamed as (
    select
        connection_name as source_name,
        split_part(id, '|', 1) as deal_id,
        record ->> 'id' as comment_id,
        record ->> 'content' as comment_html,
        nullif(
            trim(
                replace(
                    replace(
                        replace(
                            replace(replace(replace(untagged, '&nbsp;', ' '), '&quot;', '"'), '&#39;', ''''),
                            '&lt;',
                            '<'
                        ),
                        '&gt;',
                        '>'
                    ),
                    '&amp;',
                    '&'
                )
            ),
            ''
        ) as comment_text,
        case when record #>> '{owner,contentType}' = 'Employee' then record #>> '{owner,id}' end
            as author_user_id,
        case
            when record #>> '{timeCreated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{timeCreated,value}')::timestamptz
        end as created_at,
        case
            when record #>> '{timeUpdated,value}' ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}'
                then (record #>> '{timeUpdated,value}')::timestamptz
        end as modified_at,
        coalesce((record ->> 'isHidden')::boolean, false) as is_hidden,
        loaded_at
    from plain
    where
        not is_deleted
        and not coalesce((record ->> 'isDropped')::boolean, false)
)

select * from renamed
