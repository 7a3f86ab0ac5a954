with

source as (
    select * from {{ source('raw_rosbiznessoft', 'comments') }}
),

renamed as (
    select
        connection_name as source_name,
        id as comment_id,
        nullif(record -> 'values' ->> 'comment_deal', '') as deal_id,
        nullif(record -> 'values' ->> 'comment_author', '') as author_user_id,
        nullif(record -> 'values' ->> 'comment_text', '') as comment_text,
        {{ rbs_local_timestamp("record -> 'values' ->> 'comment_date'") }} as commented_at_local,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
