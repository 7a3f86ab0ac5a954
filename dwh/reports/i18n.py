"""The reports' words in Russian and English (``DWH_REPORT_LANGUAGE``)."""

from __future__ import annotations

from dwh.reports.settings import Language

SHEETS: dict[str, dict[Language, str]] = {
    "summary": {"ru": "Сводка", "en": "Summary"},
    "by_stage": {"ru": "Потери по этапам", "en": "Loss by stage"},
    "by_manager": {"ru": "Потери по менеджерам", "en": "Loss by manager"},
    "by_reason": {"ru": "Потери по причинам", "en": "Loss by reason"},
    "conversion": {"ru": "Конверсия", "en": "Conversion"},
    "conversion_weekly": {"ru": "Конверсия по неделям", "en": "Conversion by week"},
    "coaching": {"ru": "Кто у кого учится", "en": "Coaching pairs"},
    "lost_deals": {"ru": "Проигранные сделки", "en": "Lost deals"},
    "dq_issues": {"ru": "Нарушения", "en": "DQ issues"},
    "reactivation": {"ru": "Повторный контакт", "en": "Reactivation"},
}

HEADERS: dict[str, dict[Language, str]] = {
    "month": {"ru": "Месяц", "en": "Month"},
    "week": {"ru": "Неделя", "en": "Week"},
    "week_start": {"ru": "Начало недели", "en": "Week start"},
    "stage": {"ru": "Этап", "en": "Stage"},
    "stage_code": {"ru": "Код этапа", "en": "Stage code"},
    "stage_raw": {"ru": "Этап в CRM", "en": "Stage in the CRM"},
    "transition": {"ru": "Переход", "en": "Step"},
    "manager_name": {"ru": "Менеджер", "en": "Manager"},
    "reason_name": {"ru": "Причина", "en": "Reason"},
    "reason_code": {"ru": "Код причины", "en": "Reason code"},
    "reason_raw": {"ru": "Причина в CRM", "en": "Reason in the CRM"},
    "comment": {"ru": "Комментарий", "en": "Comment"},
    "lost_deals": {"ru": "Проиграно сделок", "en": "Lost deals"},
    "lost_deals_share": {"ru": "Доля сделок", "en": "Share of deals"},
    "lost_amount_base": {"ru": "Потеряно, сумма", "en": "Lost amount"},
    "lost_amount_share": {"ru": "Доля суммы", "en": "Share of amount"},
    "closed_deals": {"ru": "Закрыто сделок", "en": "Closed deals"},
    "loss_rate": {"ru": "Доля проигранных", "en": "Loss rate"},
    "share_of_all_losses": {"ru": "Доля всех потерь", "en": "Share of all losses"},
    "reached_stage": {"ru": "Дошли до этапа", "en": "Reached the stage"},
    "reached_next_stage": {"ru": "Перешли дальше", "en": "Reached the next"},
    "conversion_rate": {"ru": "Конверсия", "en": "Conversion"},
    "target_rate": {"ru": "Цель", "en": "Target"},
    "gap": {"ru": "Отставание от цели", "en": "Gap to target"},
    "coach_name": {"ru": "У кого учиться", "en": "Learn from"},
    "coach_rate": {"ru": "Конверсия коллеги", "en": "Colleague's conversion"},
    "deal_key": {"ru": "Ключ сделки", "en": "Deal key"},
    "deal_name": {"ru": "Сделка (ссылка на CRM)", "en": "Deal (link to the CRM)"},
    "source_name": {"ru": "Источник", "en": "Source"},
    "amount_base": {"ru": "Сумма", "en": "Amount"},
    "cycle_days": {"ru": "Длительность, дней", "en": "Cycle, days"},
    "closed_at": {"ru": "Закрыта", "en": "Closed"},
    "customer_name": {"ru": "Клиент", "en": "Customer"},
    "customer_won_deals_before": {"ru": "Выигранных сделок до", "en": "Won deals before"},
    "customer_relationship_days": {"ru": "Отношения, дней", "en": "Relationship, days"},
    "passed_conditional_refusal": {"ru": "Через условный отказ", "en": "Via conditional refusal"},
    "crm_url": {"ru": "Ссылка на CRM", "en": "CRM link"},
    "issue_type": {"ru": "Нарушение", "en": "Issue"},
    "first_detected_at": {"ru": "Обнаружено", "en": "First detected"},
    "loss_reason_name": {"ru": "Причина", "en": "Reason"},
    "due_on": {"ru": "Связаться", "en": "Contact on"},
    "all_managers": {"ru": "Все менеджеры", "en": "All managers"},
    "target_row": {"ru": "Цель", "en": "Target"},
    "total": {"ru": "Итого", "en": "Total"},
    "yes": {"ru": "да", "en": "yes"},
    "no": {"ru": "нет", "en": "no"},
}

ISSUE_TITLES: dict[str, dict[Language, str]] = {
    "missing_reason": {"ru": "нет причины отказа", "en": "no loss reason"},
    "missing_comment": {"ru": "нет комментария", "en": "no comment"},
    "skipped_conditional_refusal": {"ru": "закрыта, минуя «Условный отказ»",
                                    "en": "closed without the conditional refusal"},
    "lost_too_fast": {"ru": "проиграна слишком быстро", "en": "lost too fast"},
    "reason_needs_review": {"ru": "причину нужно проверить", "en": "reason needs a review"},
    "stuck_in_stage": {"ru": "сделка застряла на этапе", "en": "stuck in a stage"},
}  # fmt: skip

WORDS: dict[str, dict[Language, str]] = {
    "xlsx_title": {"ru": "Проигранные сделки: отчёт на {date}", "en": "Lost deals: report as of {date}"},
    "period": {"ru": "Период: {start} — {end} (месяцы закрытия сделок)",
               "en": "Period: {start} to {end} (months the deals closed in)"},
    "currency": {"ru": "Суммы в базовой валюте: {currency}", "en": "Amounts in the base currency: {currency}"},
    "kpi_lost": {"ru": "Проиграно сделок", "en": "Lost deals"},
    "kpi_lost_amount": {"ru": "Потеряно, сумма", "en": "Lost amount"},
    "kpi_loss_rate": {"ru": "Доля проигранных среди закрытых", "en": "Lost among closed deals"},
    "kpi_dq": {"ru": "Открытых нарушений по проигранным сделкам", "en": "Open issues on lost deals"},
    "kpi_reactivation": {"ru": "Клиентов к повторному контакту", "en": "Customers due for a new contact"},
    "block_stage": {"ru": "Потери по этапам", "en": "Loss by stage"},
    "block_reason": {"ru": "Потери по причинам", "en": "Loss by reason"},
    "block_manager": {"ru": "Потери по менеджерам", "en": "Loss by manager"},
    "chart_stage_deals": {"ru": "Проигранные сделки по этапам", "en": "Lost deals by stage"},
    "chart_stage_money": {"ru": "Потери в деньгах по этапам", "en": "Lost amount by stage"},
    "chart_reason": {"ru": "Проигранные сделки по причинам", "en": "Lost deals by reason"},
    "chart_manager": {"ru": "Проигранные сделки по менеджерам", "en": "Lost deals by manager"},
    "chart_conversion": {"ru": "Конверсия по этапам: все менеджеры и цель",
                         "en": "Conversion per stage: all managers and the target"},
    "conversion_note": {"ru": "Сделки, созданные {start} — {end}; красное — ниже цели, зелёное — цель достигнута",
                        "en": "Deals created {start} to {end}; red is below the target, green meets it"},
    "no_coaching": {"ru": "Витрина rpt_coaching_pairs ещё не построена", "en": "rpt_coaching_pairs is not built yet"},
    "unmapped": {"ru": "не сопоставлен", "en": "unmapped"},
    "unknown": {"ru": "не указано", "en": "not given"},
}  # fmt: skip


def sheet(key: str, lang: Language) -> str:
    return SHEETS[key][lang]


def header(key: str, lang: Language) -> str:
    return HEADERS[key][lang]


def word(key: str, lang: Language, **values: object) -> str:
    return WORDS[key][lang].format(**values)


def issue_title(issue_type: str, lang: Language) -> str:
    return ISSUE_TITLES.get(issue_type, {}).get(lang, issue_type)
