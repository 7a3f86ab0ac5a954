with

source as (
    select * from {{ source('raw_file', 'files') }}
),

renamed as (
    select
        connection_name as source_name,
        id as file_id,
        record ->> 'name' as file_name,
        record ->> 'kind' as file_kind,
        record ->> 'checksum' as file_checksum,
        (record ->> 'size')::bigint as size_bytes,
        (record ->> 'modified_at')::timestamptz as modified_at,
        record ->> 'status' as load_status,
        (record ->> 'rows')::integer as rows_read,
        (record ->> 'landed')::integer as rows_landed,
        (record ->> 'rejected')::integer as rows_rejected,
        record ->> 'problem' as problem,
        record ->> 'encoding' as csv_encoding,
        record ->> 'delimiter' as csv_delimiter,
        loaded_at
    from source
    where not is_deleted
)

select * from renamed
