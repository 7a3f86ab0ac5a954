{#- The company-wide loss reasons. -#}
select
    reason_code,
    reason_name,
    reason_position,
    reactivate_after_days,
    reactivate_after_days is not null as is_deferrable,
    is_review_needed
from {{ ref('stg_config__loss_reasons') }}
