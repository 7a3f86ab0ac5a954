"""The weekly funnel report to the head of sales: per manager the conversion per stage
against the target (the table of the weekly review: managers as rows, stages as columns,
red below the target, green at or above it), who should learn what from whom, and the
week's losses against the previous weeks; as an HTML e-mail with inline charts and the
Excel report attached, and as a short Telegram message with the headline numbers."""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg

from dwh.notify.email import Attachment, Email, InlineImage
from dwh.reports import charts, i18n, marts
from dwh.reports.data import Cell, ReportData, number
from dwh.reports.periods import Week, week_of
from dwh.reports.settings import Language
from dwh.reports.xlsx import CURRENCY_SYMBOLS, transition_label

GREEN_BG, GREEN_FG, RED_BG, RED_FG = "#C6EFCE", "#006100", "#F8CBAD", "#9C0006"
CONVERSION_CID, LOSSES_CID = "funnel-conversion", "loss-structure"

TEXT: dict[str, dict[Language, str]] = {
    "subject": {"ru": "Воронка продаж по менеджерам: неделя {start} — {end}",
                "en": "Sales funnel per manager: week {start} to {end}"},
    "intro": {"ru": "Еженедельный разбор воронки: конверсия каждого менеджера по этапам против целей, "
                    "кто у кого чему учится, и структура потерь недели.",
              "en": "The weekly funnel review: each manager's conversion per stage against the targets, who "
                    "should learn what from whom, and the structure of the week's losses."},
    "headline": {"ru": "За неделю проиграно {deals} на {amount} (в среднем за {n} пред. недели: {avg_deals} на {avg_amount}).",
                 "en": "Lost this week: {deals} worth {amount} (on average over the {n} weeks before: {avg_deals} "
                       "worth {avg_amount})."},
    "below": {"ru": "Ниже цели: {count} из {total} показателей.", "en": "Below target: {count} of {total} figures."},
    "conversion_title": {"ru": "Конверсия по этапам против целей", "en": "Conversion per stage against targets"},
    "conversion_note": {"ru": "Сделки, созданные {start} — {end}. В скобках: перешли дальше / дошли до этапа.",
                        "en": "Deals created {start} to {end}. In brackets: moved on / reached the stage."},
    "coaching_title": {"ru": "Кто у кого чему учится", "en": "Who should learn what from whom"},
    "coaching_line": {"ru": "{learner}: {stage} — {rate} при цели {target}; учиться у: {coach} ({coach_rate})",
                      "en": "{learner}: {stage} at {rate} against a target of {target}; learn from {coach} ({coach_rate})"},
    "no_pairs": {"ru": "Все менеджеры на уровне целей или выше — учиться не у кого.",
                 "en": "Every manager meets the targets: no coaching pairs."},
    "losses_title": {"ru": "Потери недели против предыдущих {n} недель", "en": "The week's losses against the {n} weeks before"},
    "week_col": {"ru": "Неделя: сделок", "en": "Week: deals"},
    "week_amount": {"ru": "Неделя: сумма", "en": "Week: amount"},
    "week_share": {"ru": "Неделя: доля", "en": "Week: share"},
    "prev_col": {"ru": "Среднее за неделю до того", "en": "Weekly average before"},
    "prev_share": {"ru": "Доля до того", "en": "Share before"},
    "delta": {"ru": "Изменение доли, п. п.", "en": "Change of share, pp"},
    "by_stage": {"ru": "По этапам, на которых проиграны сделки", "en": "By the stage deals were lost at"},
    "by_reason": {"ru": "По причинам", "en": "By reason"},
    "attachment": {"ru": "Во вложении — Excel-отчёт {name}: потери по этапам, менеджерам и причинам, проигранные "
                         "сделки со ссылками на CRM, нарушения и список для повторного контакта.",
                   "en": "Attached: the Excel report {name} with losses by stage, manager and reason, the lost deals "
                         "with links to the CRM, the open issues and the reactivation list."},
    "chart_conversion": {"ru": "Конверсия по этапам", "en": "Conversion per stage"},
    "chart_losses": {"ru": "Проигранные сделки по неделям", "en": "Lost deals per week"},
    "deals_axis": {"ru": "сделок", "en": "deals"},
    "telegram_more": {"ru": "Таблица по менеджерам, графики и Excel — в письме.",
                      "en": "The table per manager, the charts and the Excel file are in the e-mail."},
    "telegram_pairs": {"ru": "Кто у кого учится:", "en": "Who learns from whom:"},
    "deals_word": {"ru": "{n} сделок", "en": "{n} deals"},
}  # fmt: skip


def t(key: str, lang: Language, **values: Any) -> str:
    return TEXT[key][lang].format(**values)


def money(amount: float, currency: str) -> str:
    return f"{amount:,.0f}".replace(",", "\u00a0") + "\u00a0" + CURRENCY_SYMBOLS.get(currency, currency)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def decimal(value: float, lang: Language) -> str:
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang == "ru" else text


def deals_word(n: float, lang: Language) -> str:
    if lang == "en":
        return f"{n:g} deal" + ("" if n == 1 else "s")
    if n != int(n):
        return f"{n:.1f}".replace(".", ",") + " сделки"
    n = int(n)
    if n % 10 == 1 and n % 100 != 11:
        return f"{n} сделка"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return f"{n} сделки"
    return f"{n} сделок"


@dataclass(frozen=True)
class LossLine:
    key: str
    label: str
    week_deals: int
    week_amount: float
    week_share: float | None
    avg_deals: float
    avg_share: float | None

    @property
    def delta_pp(self) -> float | None:
        if self.week_share is None or self.avg_share is None:
            return None
        return (self.week_share - self.avg_share) * 100


@dataclass
class LossStructure:
    week: Week
    weeks: list[Week]  # the previous weeks, oldest first, then the week
    week_deals: int
    week_amount: float
    avg_deals: float
    avg_amount: float
    by_stage: list[LossLine]
    by_reason: list[LossLine]
    per_week_stage: dict[str, list[int]]
    per_week_reason: dict[str, list[int]]


def loss_structure(conn: psycopg.Connection, data: ReportData, compare_weeks: int, schema: str = "marts"
                   ) -> LossStructure:  # fmt: skip
    week = data.report_week
    weeks = [week.shift(-i) for i in range(compare_weeks, -1, -1)]
    with conn.transaction():
        marts.read_only(conn)
        rows = marts.fetch(conn, schema, marts.LOST_DEALS, "{closed_at} >= %(start)s and {closed_at} < %(end)s",
                           {"start": weeks[0].start(data.tz), "end": week.end(data.tz)})  # fmt: skip
    assert rows is not None
    lang = data.language
    reason_key = "reason_code" if rows.has("reason_code") else "reason_name"
    labels: dict[str, dict[str, str]] = {"stage": {}, "reason": {}}
    counts: dict[str, dict[tuple[date, str], int]] = {"stage": defaultdict(int), "reason": defaultdict(int)}
    amounts: dict[str, dict[tuple[date, str], float]] = {
        "stage": defaultdict(float),
        "reason": defaultdict(float),
    }
    for row in rows.rows:
        closed: datetime = row["closed_at"]
        monday = week_of(closed.astimezone(data.tz).date()).monday
        stage = row.get("stage") or row.get("stage_raw")
        keys = {
            "stage": (str(stage or ""), data.stage_label(row.get("stage"), row.get("stage_raw"))),
            "reason": (str(row.get(reason_key) or ""), row.get("reason_name") or i18n.word("unknown", lang)),
        }
        for dim, (key, label) in keys.items():
            labels[dim].setdefault(key, label)
            counts[dim][(monday, key)] += 1
            amounts[dim][(monday, key)] += number(row["amount_base"]) or 0.0
    previous = [w.monday for w in weeks[:-1]]

    def lines(dim: str) -> list[LossLine]:
        week_total = sum(counts[dim][(week.monday, k)] for k in labels[dim])
        prev_total = sum(counts[dim][(m, k)] for m in previous for k in labels[dim])
        out = []
        for key, label in labels[dim].items():
            wd = counts[dim][(week.monday, key)]
            pd = sum(counts[dim][(m, key)] for m in previous)
            out.append(LossLine(key, label, wd, amounts[dim][(week.monday, key)],
                                wd / week_total if week_total else None, pd / len(previous),
                                pd / prev_total if prev_total else None))  # fmt: skip
        if dim == "stage":
            return sorted(out, key=lambda line: data.stage_order(line.key or None))
        return sorted(out, key=lambda line: (-line.week_deals, -line.avg_deals, line.label))

    by_stage, by_reason = lines("stage"), lines("reason")
    per_week = {
        dim: {line.label: [counts[dim][(w.monday, line.key)] for w in weeks] for line in ordered}
        for dim, ordered in (("stage", by_stage), ("reason", by_reason))
    }
    week_amount = sum(amounts["stage"][(week.monday, k)] for k in labels["stage"])
    prev_amount = sum(amounts["stage"][(m, k)] for m in previous for k in labels["stage"])
    return LossStructure(
        week=week, weeks=weeks, week_deals=sum(line.week_deals for line in by_stage), week_amount=week_amount,
        avg_deals=sum(line.avg_deals for line in by_stage), avg_amount=prev_amount / len(previous),
        by_stage=by_stage, by_reason=by_reason, per_week_stage=per_week["stage"],
        per_week_reason=per_week["reason"],
    )  # fmt: skip


@dataclass
class WeeklyReport:
    week: Week
    email: Email
    telegram: str  # Telegram's HTML


def _day(value: date, lang: Language) -> str:
    return value.strftime("%d.%m.%Y") if lang == "ru" else value.isoformat()


def _cell_style(cell: Cell) -> str:
    if cell.rate is None or cell.target is None:
        return "padding:4px 8px;border:1px solid #BFBFBF;text-align:center"
    bg, fg = (RED_BG, RED_FG) if cell.below_target else (GREEN_BG, GREEN_FG)
    return f"padding:4px 8px;border:1px solid #BFBFBF;text-align:center;background:{bg};color:{fg}"


TH = "padding:4px 8px;border:1px solid #BFBFBF;background:#1F4E79;color:#FFFFFF;text-align:center"
TD = "padding:4px 8px;border:1px solid #BFBFBF"
TABLE = "border-collapse:collapse;font-family:Arial,sans-serif;font-size:13px"


def conversion_table(data: ReportData) -> tuple[str, list[str], int, int]:
    """(HTML table, plain lines, figures below target, figures with a target)."""
    m, lang = data.matrix, data.language
    esc = html.escape
    head = "".join(f'<th style="{TH}">{esc(transition_label(data, s.code))}</th>' for s in m.stages)
    out = [f'<table style="{TABLE}" data-table="conversion"><tr><th style="{TH}">'
           f'{esc(i18n.header("manager_name", lang))}</th>{head}</tr>']  # fmt: skip
    targets = [m.total[s.code].target if s.code in m.total else s.target for s in m.stages]
    out.append(f'<tr><td style="{TD}"><b>{esc(i18n.header("target_row", lang))}</b></td>'
               + "".join(f'<td style="{TD};text-align:center"><b>{percent(v)}</b></td>' for v in targets)
               + "</tr>")  # fmt: skip
    plain = [i18n.header("manager_name", lang) + ": " + " | ".join(transition_label(data, s.code) for s in m.stages),
             i18n.header("target_row", lang) + ": " + " | ".join(percent(v) for v in targets)]  # fmt: skip
    below = total = 0
    rows: list[tuple[str, list[Cell], bool]] = [
        (manager, [m.cell(manager, s.code) for s in m.stages], False) for manager in m.managers
    ]
    rows.append((i18n.header("all_managers", lang), [m.total.get(s.code, Cell()) for s in m.stages], True))
    for name, cells, is_total in rows:
        tds = []
        for cell in cells:
            mark = "" if cell.rate is None or cell.target is None else (" ▼" if cell.below_target else " ✓")
            counts = (
                f'<br><span style="font-size:11px">({cell.moved_on}/{cell.reached})</span>'
                if cell.reached
                else ""
            )
            tds.append(f'<td style="{_cell_style(cell)}">{percent(cell.rate)}{mark}{counts}</td>')
            if not is_total and cell.rate is not None and cell.target is not None:
                total += 1
                below += cell.below_target
        label = f"<b>{esc(name)}</b>" if is_total else esc(name)
        out.append(f'<tr><td style="{TD}">{label}</td>{"".join(tds)}</tr>')
        plain.append(f"{name}: " + " | ".join(
            percent(c.rate) + (" (ниже цели)" if lang == "ru" and c.below_target else
                               " (below target)" if c.below_target else "") for c in cells))  # fmt: skip
    out.append("</table>")
    return "".join(out), plain, below, total


def coaching_lines(data: ReportData) -> list[dict[str, str]]:
    if data.coaching is None:
        return []
    lines = []
    for row in data.coaching.rows:
        target = number(row.get("target_rate"))
        if target is None:
            target = next((s.target for s in data.stages if s.code == row["stage"]), None)
        lines.append({
            "learner": str(row["manager_name"]), "coach": str(row["coach_name"]),
            "stage": transition_label(data, row["stage"]), "rate": percent(number(row["conversion_rate"])),
            "coach_rate": percent(number(row.get("coach_rate"))), "target": percent(target),
        })  # fmt: skip
    return lines


def loss_table(name: str, title: str, lines: list[LossLine], data: ReportData) -> str:
    lang, esc = data.language, html.escape
    heads = [title, t("week_col", lang), t("week_amount", lang), t("week_share", lang), t("prev_col", lang),
             t("prev_share", lang), t("delta", lang)]  # fmt: skip
    out = [f'<table style="{TABLE}" data-table="losses-{name}"><tr>'
           + "".join(f'<th style="{TH}">{esc(h)}</th>' for h in heads) + "</tr>"]  # fmt: skip
    for line in lines:
        delta = line.delta_pp
        colour = (
            ""
            if delta is None or abs(delta) < 0.5
            else (f";color:{RED_FG}" if delta > 0 else f";color:{GREEN_FG}")
        )
        delta_text = "—" if delta is None else f"{delta:+.0f}"
        avg = decimal(line.avg_deals, lang)
        out.append(f'<tr><td style="{TD}">{esc(line.label)}</td><td style="{TD};text-align:right">{line.week_deals}</td>'
                   f'<td style="{TD};text-align:right">{money(line.week_amount, data.currency)}</td>'
                   f'<td style="{TD};text-align:right">{percent(line.week_share)}</td>'
                   f'<td style="{TD};text-align:right">{avg}</td>'
                   f'<td style="{TD};text-align:right">{percent(line.avg_share)}</td>'
                   f'<td style="{TD};text-align:right{colour}">{delta_text}</td></tr>')  # fmt: skip
    out.append("</table>")
    return "".join(out)


def compose(data: ReportData, losses: LossStructure, xlsx: Path | None) -> WeeklyReport:
    lang, esc, m = data.language, html.escape, data.matrix
    week = data.report_week
    subject = t("subject", lang, start=_day(week.monday, lang), end=_day(week.sunday, lang))
    table_html, table_plain, below, total = conversion_table(data)
    n = len(losses.weeks) - 1
    headline = t("headline", lang, deals=deals_word(losses.week_deals, lang),
                 amount=money(losses.week_amount, data.currency), n=n,
                 avg_deals=deals_word(round(losses.avg_deals, 1), lang),
                 avg_amount=money(losses.avg_amount, data.currency))  # fmt: skip
    below_text = t("below", lang, count=below, total=total)
    pairs = coaching_lines(data)
    stage_labels = [transition_label(data, s.code) for s in m.stages]
    conversion_png = charts.conversion_chart(
        t("chart_conversion", lang), stage_labels, m.managers,
        {manager: [m.cell(manager, s.code).rate for s in m.stages] for manager in m.managers},
        [m.total[s.code].target if s.code in m.total else s.target for s in m.stages],
        i18n.header("target_row", lang),
    )  # fmt: skip
    losses_png = charts.losses_chart(
        t("chart_losses", lang), [w.label for w in losses.weeks],
        [(t("by_stage", lang), losses.per_week_stage), (t("by_reason", lang), losses.per_week_reason)],
        t("deals_axis", lang),
    )  # fmt: skip

    note = t(
        "conversion_note", lang, start=_day(m.first_week.monday, lang), end=_day(m.last_week.sunday, lang)
    )
    parts = [
        '<html><body style="font-family:Arial,sans-serif;font-size:14px;color:#222">',
        f"<h2>{esc(subject)}</h2>",
        f"<p>{esc(t('intro', lang))}</p>",
        f"<p><b>{esc(headline)}</b><br>{esc(below_text)}</p>",
        f"<h3>{esc(t('conversion_title', lang))}</h3>",
        f"<p style='color:#595959'>{esc(note)}</p>",
        table_html,
        f'<p><img src="cid:{CONVERSION_CID}" alt="{esc(t("chart_conversion", lang))}" style="max-width:100%"></p>',
        f"<h3>{esc(t('coaching_title', lang))}</h3>",
    ]
    if pairs:
        parts.append("<ul data-list='coaching'>"
                     + "".join(f"<li>{esc(t('coaching_line', lang, **p))}</li>" for p in pairs) + "</ul>")  # fmt: skip
    else:
        parts.append(
            f"<p>{esc(t('no_pairs', lang) if data.coaching is not None else i18n.word('no_coaching', lang))}</p>"
        )
    parts += [
        f"<h3>{esc(t('losses_title', lang, n=n))}</h3>",
        loss_table("stage", t("by_stage", lang), losses.by_stage, data),
        "<br>",
        loss_table("reason", t("by_reason", lang), losses.by_reason, data),
        f'<p><img src="cid:{LOSSES_CID}" alt="{esc(t("chart_losses", lang))}" style="max-width:100%"></p>',
    ]
    if xlsx is not None:
        parts.append(f"<p>{esc(t('attachment', lang, name=xlsx.name))}</p>")
    parts.append("</body></html>")

    text = [subject, "", t("intro", lang), "", headline, below_text, "", t("conversion_title", lang), note,
            *table_plain, "", t("coaching_title", lang)]  # fmt: skip
    text += [f"- {t('coaching_line', lang, **p)}" for p in pairs] or [t("no_pairs", lang)]
    text += ["", t("losses_title", lang, n=n)]
    for title, lines in ((t("by_stage", lang), losses.by_stage), (t("by_reason", lang), losses.by_reason)):
        text.append(title + ":")
        text += [f"  {line.label}: {line.week_deals} ({percent(line.week_share)}), "
                 f"{'до того' if lang == 'ru' else 'before'} {decimal(line.avg_deals, lang)} ({percent(line.avg_share)})"
                 for line in lines]  # fmt: skip
    if xlsx is not None:
        text += ["", t("attachment", lang, name=xlsx.name)]

    attachments = [Attachment(xlsx.name, xlsx.read_bytes())] if xlsx is not None else []
    email = Email(
        subject=subject, text="\n".join(text), html="".join(parts),
        images=[InlineImage(CONVERSION_CID, conversion_png), InlineImage(LOSSES_CID, losses_png)],
        attachments=attachments, message_id=f"<weekly-funnel-{week.label}@lossdwh.local>",
    )  # fmt: skip
    return WeeklyReport(
        week=week, email=email, telegram=telegram_text(data, losses, headline, below_text, pairs)
    )


def telegram_text(data: ReportData, losses: LossStructure, headline: str, below: str, pairs: list[dict[str, str]]
                  ) -> str:  # fmt: skip
    lang, esc = data.language, html.escape
    week = data.report_week
    lines = [f"<b>{esc(t('subject', lang, start=_day(week.monday, lang), end=_day(week.sunday, lang)))}</b>",
             esc(headline), esc(below)]  # fmt: skip
    if pairs:
        lines.append(esc(t("telegram_pairs", lang)))
        lines += [f"• {esc(p['learner'])} ← {esc(p['coach'])}: {esc(p['stage'])}" for p in pairs]
    lines.append(esc(t("telegram_more", lang)))
    return "\n".join(lines)
