{#- Every customer record of every system — amoCRM and Bitrix24 companies, 1C partners,
    Creatio accounts, Megaplan contractor companies, RosBiznesSoft companies, the customers
    file exports name — with its INN normalised. customer_key is "inn:<INN>" when the INN is
    a possible one (digits only, right length and check digits), so that one customer is one
    key across systems; otherwise "<connection>:<id>". A deal without a company has no
    customer. -#}
with

bitrix24_company_inns as (
    select
        source_name,
        entity_id as company_id,
        inn_raw,
        {{ normalized_inn('inn_raw') }} as inn,
        row_number() over (
            partition by source_name, entity_id
            -- a possible INN first, then the company's first requisite
            order by
                ({{ normalized_inn('inn_raw') }} is not null) desc,
                is_active desc,
                requisite_sort asc nulls last,
                requisite_id asc
        ) as inn_rank
    from {{ ref('stg_bitrix24__requisites') }}
    where entity_type_id = 4
),

megaplan_company_inns as (
    select
        source_name,
        company_id,
        inn_raw,
        {{ normalized_inn('inn_raw') }} as inn,
        row_number() over (
            partition by source_name, company_id
            order by
                ({{ normalized_inn('inn_raw') }} is not null) desc,
                payer_position asc nulls last,
                payer_id asc
        ) as inn_rank
    from {{ ref('stg_megaplan__contractor_payers') }}
),

rosbiznessoft_company_inns as (
    select
        source_name,
        company_id,
        inn_raw,
        {{ normalized_inn('inn_raw') }} as inn,
        row_number() over (
            partition by source_name, company_id
            order by
                ({{ normalized_inn('inn_raw') }} is not null) desc,
                modified_at_local desc nulls last,
                details_id asc
        ) as inn_rank
    from {{ ref('stg_rosbiznessoft__company_details') }}
),

onec_partner_inns as (
    select
        source_name,
        partner_id,
        inn_raw,
        {{ normalized_inn('inn_raw') }} as inn,
        row_number() over (
            partition by source_name, partner_id
            order by
                ({{ normalized_inn('inn_raw') }} is not null) desc,
                is_marked_for_deletion,
                counterparty_name asc,
                counterparty_id asc
        ) as inn_rank
    from {{ ref('stg_onec__counterparties') }}
    where partner_id is not null
),

-- file connections: a customer is the name the exports write (its INN as written when there
-- is no name); its INN is the deals' (a possible one first, then the newest export's), its
-- creation the first deal's
file_customers as (
    select
        file_deals.source_name,
        coalesce(file_deals.customer_name, file_deals.customer_inn_raw) as customer_source_id,
        file_deals.customer_name,
        file_deals.customer_inn_raw as inn_raw,
        file_deals.customer_inn as inn,
        min(
            {{ local_instant('file_deals.created_at_local', 'file_timezones') }}
        ) over (
            partition by
                file_deals.source_name,
                coalesce(file_deals.customer_name, file_deals.customer_inn_raw)
        ) as created_at,
        row_number() over (
            partition by
                file_deals.source_name,
                coalesce(file_deals.customer_name, file_deals.customer_inn_raw)
            order by
                (file_deals.customer_inn is not null) desc,
                (file_deals.customer_inn_raw is not null) desc,
                file_deals.exported_at desc,
                file_deals.deal_id asc
        ) as inn_rank
    from {{ ref('stg_file__deals') }} as file_deals
    left join {{ ref('int_source_timezones') }} as file_timezones
        on file_deals.source_name = file_timezones.source_name
    where coalesce(file_deals.customer_name, file_deals.customer_inn_raw) is not null
),

records as (
    select
        companies.source_name,
        'amocrm' as source_system,
        companies.company_id as customer_source_id,
        'company' as customer_kind,
        companies.company_name as customer_name,
        companies.inn_raw,
        {{ normalized_inn('companies.inn_raw') }} as inn,
        companies.created_at
    from {{ ref('stg_amocrm__companies') }} as companies

    union all
    select
        companies.source_name,
        'bitrix24' as source_system,
        companies.company_id as customer_source_id,
        'company' as customer_kind,
        companies.company_name as customer_name,
        inns.inn_raw,
        inns.inn,
        companies.created_at
    from {{ ref('stg_bitrix24__companies') }} as companies
    left join bitrix24_company_inns as inns
        on
            companies.source_name = inns.source_name
            and companies.company_id = inns.company_id
            and inns.inn_rank = 1
    union all
    select
        partners.source_name,
        'onec' as source_system,
        partners.partner_id as customer_source_id,
        'partner' as customer_kind,
        partners.partner_name as customer_name,
        inns.inn_raw,
        inns.inn,
        {{ local_instant('partners.registered_at_local') }} as created_at
    from {{ ref('stg_onec__partners') }} as partners
    left join onec_partner_inns as inns
        on
            partners.source_name = inns.source_name
            and partners.partner_id = inns.partner_id
            and inns.inn_rank = 1
    left join {{ ref('int_source_timezones') }} as timezones
        on partners.source_name = timezones.source_name
    union all
    select
        creatio_accounts.source_name,
        'creatio' as source_system,
        creatio_accounts.account_id as customer_source_id,
        'account' as customer_kind,
        creatio_accounts.account_name as customer_name,
        creatio_accounts.inn_raw,
        {{ normalized_inn('creatio_accounts.inn_raw') }} as inn,
        creatio_accounts.created_at
    from {{ ref('stg_creatio__accounts') }} as creatio_accounts
    union all
    select
        companies.source_name,
        'megaplan' as source_system,
        companies.company_id as customer_source_id,
        'company' as customer_kind,
        companies.company_name as customer_name,
        inns.inn_raw,
        inns.inn,
        companies.created_at
    from {{ ref('stg_megaplan__contractor_companies') }} as companies
    left join megaplan_company_inns as inns
        on
            companies.source_name = inns.source_name
            and companies.company_id = inns.company_id
            and inns.inn_rank = 1
    union all
    select
        rbs_companies.source_name,
        'rosbiznessoft' as source_system,
        rbs_companies.company_id as customer_source_id,
        'company' as customer_kind,
        rbs_companies.company_name as customer_name,
        rbs_inns.inn_raw,
        rbs_inns.inn,
        {{ local_instant('rbs_companies.created_at_local', 'rbs_timezones') }} as created_at
    from {{ ref('stg_rosbiznessoft__companies') }} as rbs_companies
    left join rosbiznessoft_company_inns as rbs_inns
        on
            rbs_companies.source_name = rbs_inns.source_name
            and rbs_companies.company_id = rbs_inns.company_id
            and rbs_inns.inn_rank = 1
    left join {{ ref('int_source_timezones') }} as rbs_timezones
        on rbs_companies.source_name = rbs_timezones.source_name
    union all
    select
        source_name,
        'file' as source_system,
        customer_source_id,
        'company' as customer_kind,
        customer_name,
        inn_raw,
        inn,
        created_at
    from file_customers
    where inn_rank = 1
)

select
    source_name || ':' || customer_source_id as customer_record_key,
    source_name,
    source_system,
    customer_source_id,
    customer_kind,
    customer_name,
    inn_raw,
    inn,
    inn is not null as has_valid_inn,
    case
        when inn is not null then 'inn:' || inn
        else source_name || ':' || customer_source_id
    end as customer_key,
    created_at
from records
