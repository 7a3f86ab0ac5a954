"""The digest as words: plain text and HTML for e-mail, HTML for Telegram.

Up to ``DETAIL_LIMIT`` issues are listed deal by deal, grouped by manager. Past it (a first
run over a year of history, say) the digest is a summary: counts per manager and issue type,
and the largest deals only, so the head of sales is never buried.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from dwh.digest.issues import ISSUE_TITLES, Issue

DETAIL_LIMIT = 60
SUMMARY_TOP = 15


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    telegram: str
    is_summary: bool


def _money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "сумма не указана"
    return f"{amount:,.0f}".replace(",", " ") + f" {currency}"


def _line(issue: Issue, currency: str) -> tuple[str, str]:
    """(plain, html) of one deal."""
    facts = [issue.title, _money(issue.amount_base, currency), f"этап: {issue.stage or '—'}",
             f"причина: {issue.reason or '—'}"]  # fmt: skip
    plain = (
        f"  • {issue.deal_name} — " + "; ".join(facts) + (f"\n    {issue.crm_url}" if issue.crm_url else "")
    )
    name = html.escape(issue.deal_name)
    link = f'<a href="{html.escape(issue.crm_url)}">{name}</a>' if issue.crm_url else name
    return plain, f"{link} — " + "; ".join(html.escape(f) for f in facts)


def render(issues: list[Issue], currency: str = "RUB") -> Rendered:
    by_manager: dict[str, list[Issue]] = defaultdict(list)
    for issue in issues:
        by_manager[issue.manager_name].append(issue)
    counts = Counter(i.issue_type for i in issues)
    deals = len({i.deal_key for i in issues})
    summary = len(issues) > DETAIL_LIMIT
    subject = f"Проигранные сделки с нарушениями: {deals} сделок, {len(issues)} нарушений"
    head = [f"Новые нарушения правил по проигранным сделкам: {len(issues)} в {deals} сделках."]
    head += [
        f"  {ISSUE_TITLES.get(t, t)}: {n}" for t, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))
    ]

    text: list[str] = [*head, ""]
    body_html: list[str] = [f"<p>{html.escape(head[0])}</p><ul>"]
    body_html += [f"<li>{html.escape(h.strip())}</li>" for h in head[1:]] + ["</ul>"]
    tg: list[str] = [f"<b>{html.escape(head[0])}</b>", *(html.escape(h.strip()) for h in head[1:]), ""]

    if summary:
        note = (f"Нарушений много, поэтому это сводка по менеджерам и {SUMMARY_TOP} крупнейших сделок; полный список — "
                f"в витрине marts.dq_lost_deal_issues и в Excel-отчёте.")  # fmt: skip
        text += [note, ""]
        body_html += [f"<p>{html.escape(note)}</p>", "<table border='1' cellpadding='4'><tr><th>Менеджер</th>"
                      + "".join(f"<th>{html.escape(ISSUE_TITLES.get(t, t))}</th>" for t in sorted(counts))
                      + "</tr>"]  # fmt: skip
        tg += [html.escape(note), ""]
        for manager, items in sorted(by_manager.items()):
            per = Counter(i.issue_type for i in items)
            text.append(
                f"{manager}: " + ", ".join(f"{ISSUE_TITLES.get(t, t)} — {n}" for t, n in sorted(per.items()))
            )
            body_html.append(f"<tr><td>{html.escape(manager)}</td>"
                             + "".join(f"<td>{per.get(t, 0)}</td>" for t in sorted(counts)) + "</tr>")  # fmt: skip
            tg.append(f"<b>{html.escape(manager)}</b>: "
                      + ", ".join(f"{html.escape(ISSUE_TITLES.get(t, t))} — {n}" for t, n in sorted(per.items())))  # fmt: skip
        body_html.append("</table>")
        top = sorted(issues, key=lambda i: (-(i.amount_base or 0), i.deal_key))[:SUMMARY_TOP]
        text += ["", "Крупнейшие сделки:"]
        body_html.append("<h3>Крупнейшие сделки</h3><ul>")
        tg += ["", "<b>Крупнейшие сделки</b>"]
        for issue in top:
            plain, rich = _line(issue, currency)
            text.append(plain.replace("  • ", f"  • {issue.manager_name}: ", 1))
            body_html.append(f"<li>{html.escape(issue.manager_name)}: {rich}</li>")
            tg.append(f"• {html.escape(issue.manager_name)}: {rich}")
        body_html.append("</ul>")
    else:
        for manager, items in sorted(by_manager.items()):
            text.append(f"{manager} ({len(items)}):")
            body_html.append(f"<h3>{html.escape(manager)} ({len(items)})</h3><ul>")
            tg += ["", f"<b>{html.escape(manager)}</b> ({len(items)})"]
            for issue in items:
                plain, rich = _line(issue, currency)
                text.append(plain)
                body_html.append(f"<li>{rich}</li>")
                tg.append(f"• {rich}")
            body_html.append("</ul>")
            text.append("")
    page = "<html><body style='font-family: sans-serif'>" + "\n".join(body_html) + "</body></html>"
    return Rendered(subject, "\n".join(text).rstrip() + "\n", page, "\n".join(tg).strip(), summary)
