"""``loss_report_<date>.xlsx``: the lost-deals report as an Excel workbook (xlsxwriter).

Sheets: a summary with native bar charts; loss by stage, by manager and by reason (deals and
money, per month); the funnel conversion per manager against targets (red below the target,
green at or above it) with a chart, and per week; the coaching pairs; the lost deals with
links to their CRM cards; the open data-quality issues; the reactivation list. Every table
sheet has a frozen header, an autofilter and number formats; free text is written as text
(never as a formula) with phones and e-mails masked.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from dwh.reports import i18n
from dwh.reports.data import ConversionMatrix, ReportData, Total, number
from dwh.reports.periods import Week, local_naive
from dwh.reports.safe import cell_text, web_link
from dwh.reports.settings import Language

CURRENCY_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "CNY": "¥"}
MAX_LINKS_PER_SHEET = 65_000  # Excel's limit is 65,530; past it a link is written as its text
RED = {"bg_color": "#F8CBAD", "font_color": "#9C0006"}
GREEN = {"bg_color": "#C6EFCE", "font_color": "#006100"}


def money_format(currency: str) -> str:
    """Thousands grouped by the reader's locale (a space in Russian Excel: ``# ##0 ₽``)."""
    symbol = CURRENCY_SYMBOLS.get(currency, currency).replace('"', "")
    return f'#,##0 "{symbol}"'


def report_path(export_dir: Path, as_of: date) -> Path:
    return export_dir / f"loss_report_{as_of.isoformat()}.xlsx"


@dataclass(frozen=True)
class Column:
    key: str  # the row's key (and the header's, unless ``header`` is given)
    kind: str  # text, int, money, percent, days, date, datetime, month, bool, link, issue, stage
    header: str | None = None
    width: float | None = None
    source: str | None = None  # the row's key to read, when not ``key``
    link: str = "crm_url"  # for kind == "link": the row key holding the URL

    @property
    def row_key(self) -> str:
        return self.source or ("deal_name" if self.kind == "link" else self.key)


class Formats:
    def __init__(self, wb: xlsxwriter.Workbook, currency: str, lang: Language):
        date_fmt = "dd.mm.yyyy" if lang == "ru" else "yyyy-mm-dd"
        self.header = wb.add_format({"bold": True, "bg_color": "#1F4E79", "font_color": "#FFFFFF",
                                     "text_wrap": True, "valign": "top", "border": 1})  # fmt: skip
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.bold = wb.add_format({"bold": True})
        self.note = wb.add_format({"italic": True, "font_color": "#595959"})
        self.text = wb.add_format({"valign": "top"})
        self.wrap = wb.add_format({"valign": "top", "text_wrap": True})
        self.int = wb.add_format({"num_format": "#,##0", "valign": "top"})
        self.money = wb.add_format({"num_format": money_format(currency), "valign": "top"})
        self.percent = wb.add_format({"num_format": "0.0%", "valign": "top"})
        self.days = wb.add_format({"num_format": "0.0", "valign": "top"})
        self.date = wb.add_format({"num_format": date_fmt, "valign": "top"})
        self.datetime = wb.add_format({"num_format": f"{date_fmt} hh:mm", "valign": "top"})
        self.month = wb.add_format({"num_format": "mm.yyyy" if lang == "ru" else "yyyy-mm", "valign": "top"})
        self.link = wb.add_format({"font_color": "#0563C1", "underline": 1, "valign": "top"})
        self.red = wb.add_format(RED)
        self.green = wb.add_format(GREEN)
        self.total_int = wb.add_format({"num_format": "#,##0", "bold": True, "top": 1})
        self.total_money = wb.add_format({"num_format": money_format(currency), "bold": True, "top": 1})
        self.total_percent = wb.add_format({"num_format": "0.0%", "bold": True, "top": 1})
        self.total_text = wb.add_format({"bold": True, "top": 1})

    def of(self, kind: str) -> Format:
        return {"int": self.int, "money": self.money, "percent": self.percent, "days": self.days,
                "date": self.date, "datetime": self.datetime, "month": self.month, "link": self.link,
                "text": self.wrap}.get(kind, self.text)  # fmt: skip


DEFAULT_WIDTHS = {"int": 12, "money": 16, "percent": 11, "days": 11, "date": 12, "datetime": 17, "month": 10,
                  "bool": 12}  # fmt: skip


class Writer:
    def __init__(self, wb: xlsxwriter.Workbook, data: ReportData):
        self.wb = wb
        self.data = data
        self.lang: Language = data.language
        self.f = Formats(wb, data.currency, data.language)

    # -- cells ---------------------------------------------------------------------------------
    def value(self, ws: Worksheet, r: int, c: int, kind: str, value: Any, row: dict[str, Any], links: list[int],
              col: Column) -> int:  # fmt: skip
        """Write one cell; returns its text length (for the column's width)."""
        fmt = self.f.of(kind)
        if kind == "link":
            text = cell_text(value) or str(row.get("deal_key") or "")
            url = web_link(row.get(col.link))
            if url and links[0] < MAX_LINKS_PER_SHEET:
                ws.write_url(r, c, url, self.f.link, string=text or url)
                links[0] += 1
            else:
                ws.write_string(r, c, text, self.f.text)
            return len(text)
        if value is None or value == "":
            ws.write_blank(r, c, None, fmt)
            return 0
        if kind in ("int", "money", "percent", "days"):
            ws.write_number(r, c, number(value), fmt)
            return 10
        if kind in ("date", "month"):
            day = value.date() if isinstance(value, datetime) else value
            ws.write_datetime(r, c, datetime(day.year, day.month, day.day), fmt)
            return 10
        if kind == "datetime":
            ws.write_datetime(r, c, local_naive(value, self.data.tz), fmt)
            return 16
        if kind == "bool":
            text = i18n.header("yes" if value else "no", self.lang)
        elif kind == "issue":
            text = i18n.issue_title(str(value), self.lang)
        elif kind == "stage":
            text = self.data.stage_label(value, row.get("stage_name"))
        else:
            text = cell_text(str(value)) or ""
        ws.write_string(r, c, text, fmt)
        return len(text)

    def table(self, ws: Worksheet, top: int, columns: Sequence[Column], rows: Sequence[dict[str, Any]],
              freeze: bool = True, autofilter: bool = True) -> int:  # fmt: skip
        """A header row at ``top`` and the rows below it; returns the last row written."""
        widths = []
        for c, col in enumerate(columns):
            text = col.header or i18n.header(col.key, self.lang)
            ws.write_string(top, c, text, self.f.header)
            widths.append(max(len(w) for w in text.split()) + 3 if text else 8)
        links = [0]
        longest = [0] * len(columns)
        for i, row in enumerate(rows, start=top + 1):
            for c, col in enumerate(columns):
                size = self.value(ws, i, c, col.kind, row.get(col.row_key), row, links, col)
                longest[c] = max(longest[c], size)
        last = top + len(rows)
        lines = 1
        for c, col in enumerate(columns):
            width = min(
                60, col.width or max(widths[c], DEFAULT_WIDTHS.get(col.kind, min(60, longest[c] + 2)))
            )
            ws.set_column(c, c, width)
            lines = max(lines, header_lines(col.header or i18n.header(col.key, self.lang), width))
        ws.set_row(top, 15 * lines + 3)
        if freeze:
            ws.freeze_panes(top + 1, 0)
        if autofilter:
            ws.autofilter(top, 0, last, len(columns) - 1)
        return last

    # -- sheets --------------------------------------------------------------------------------
    def sheet(self, key: str) -> Worksheet:
        """A new sheet that prints landscape on A4, one page wide, the header repeated."""
        ws = self.wb.add_worksheet(i18n.sheet(key, self.lang))
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
        if key not in ("summary", "conversion"):
            ws.repeat_rows(0)
        return ws

    def summary(self) -> None:
        d, lang, f = self.data, self.lang, self.f
        ws = self.sheet("summary")
        ws.activate()
        ws.set_column(0, 0, 42)
        ws.set_column(1, 5, 16)
        ws.write_string(0, 0, i18n.word("xlsx_title", lang, date=self.day(d.as_of)), f.title)
        ws.write_string(
            1, 0, i18n.word("period", lang, start=self.day(d.period_start), end=self.day(d.as_of)), f.note
        )
        ws.write_string(2, 0, i18n.word("currency", lang, currency=d.currency), f.note)

        by_stage, by_reason, by_manager = d.totals_by_stage(), d.totals_by_reason(), d.totals_by_manager()
        lost = sum(t.lost_deals for t in by_stage)
        amount = sum(t.lost_amount for t in by_stage)
        closed = sum(t.closed_deals or 0 for t in by_manager)
        kpis: list[tuple[str, float | None, Format]] = [
            (i18n.word("kpi_lost", lang), lost, f.int),
            (i18n.word("kpi_lost_amount", lang), amount, f.money),
            (i18n.word("kpi_loss_rate", lang), sum(t.lost_deals for t in by_manager) / closed if closed else None,
             f.percent),
            (i18n.word("kpi_dq", lang), len(d.dq_issues.rows), f.int),
            (i18n.word("kpi_reactivation", lang), len(d.reactivation.rows), f.int),
        ]  # fmt: skip
        for i, (label, value, fmt) in enumerate(kpis, start=4):
            ws.write_string(i, 0, label, f.bold)
            if value is None:
                ws.write_blank(i, 1, None, fmt)
            else:
                ws.write_number(i, 1, value, fmt)

        row = 11
        charts_at = 0
        blocks = (("block_stage", "stage", by_stage, False), ("block_reason", "reason_name", by_reason, False),
                  ("block_manager", "manager_name", by_manager, True))  # fmt: skip
        for key, dimension, totals, with_closed in blocks:
            first, last = self.totals_block(ws, row, i18n.word(key, lang), dimension, totals, with_closed)
            if totals:
                value_col = 2 if with_closed else 1
                names = {"block_stage": ["chart_stage_deals", "chart_stage_money"], "block_reason": ["chart_reason"],
                         "block_manager": ["chart_manager"]}[key]  # fmt: skip
                for name in names:
                    col = value_col + (2 if name == "chart_stage_money" else 0)
                    fmt_money = name == "chart_stage_money"
                    at = (20 * (charts_at // 2), 7 + 10 * (charts_at % 2))  # two charts a row
                    self.bar_chart(ws, at, i18n.word(name, lang), first, last, col, fmt_money)
                    charts_at += 1
            row = last + 3

    def totals_block(self, ws: Worksheet, top: int, title: str, dimension: str, totals: list[Total],
                     with_closed: bool) -> tuple[int, int]:  # fmt: skip
        """Returns the first and last data rows."""
        f, lang = self.f, self.lang
        ws.write_string(top, 0, title, f.bold)
        head = [dimension, "lost_deals", "lost_deals_share", "lost_amount_base", "lost_amount_share"]
        if with_closed:
            head = [
                dimension,
                "closed_deals",
                "lost_deals",
                "loss_rate",
                "lost_amount_base",
                "share_of_all_losses",
            ]
        header_row = top + 1
        for c, key in enumerate(head):
            ws.write_string(header_row, c, i18n.header(key, lang), f.header)
        all_deals = sum(t.lost_deals for t in totals)
        all_amount = sum(t.lost_amount for t in totals)
        r = header_row
        for r, t in enumerate(totals, start=header_row + 1):
            ws.write_string(r, 0, t.label, f.text)
            if with_closed:
                values = [(t.closed_deals or 0, f.int), (t.lost_deals, f.int),
                          (t.lost_deals / t.closed_deals if t.closed_deals else None, f.percent),
                          (t.lost_amount, f.money), (t.lost_deals / all_deals if all_deals else None, f.percent)]  # fmt: skip
            else:
                values = [(t.lost_deals, f.int), (t.lost_deals / all_deals if all_deals else None, f.percent),
                          (t.lost_amount, f.money), (t.lost_amount / all_amount if all_amount else None, f.percent)]  # fmt: skip
            for c, (value, fmt) in enumerate(values, start=1):
                if value is None:
                    ws.write_blank(r, c, None, fmt)
                else:
                    ws.write_number(r, c, value, fmt)
        total_row = r + 1
        ws.write_string(total_row, 0, i18n.header("total", lang), f.total_text)
        if with_closed:
            closed = sum(t.closed_deals or 0 for t in totals)
            cells = [(closed, f.total_int), (all_deals, f.total_int),
                     (all_deals / closed if closed else 0, f.total_percent), (all_amount, f.total_money),
                     (1 if all_deals else 0, f.total_percent)]  # fmt: skip
        else:
            cells = [(all_deals, f.total_int), (1 if all_deals else 0, f.total_percent),
                     (all_amount, f.total_money), (1 if all_amount else 0, f.total_percent)]  # fmt: skip
        for c, (value, fmt) in enumerate(cells, start=1):
            ws.write_number(total_row, c, value, fmt)
        return header_row + 1, max(header_row + 1, r)

    def bar_chart(self, ws: Worksheet, at: tuple[int, int], title: str, first: int, last: int, col: int,
                  money: bool) -> None:  # fmt: skip
        chart = self.wb.add_chart({"type": "bar"})
        name = ws.get_name()
        chart.add_series({
            "name": title,
            "categories": [name, first, 0, last, 0],
            "values": [name, first, col, last, col],
            "fill": {"color": "#C0504D" if money else "#4F81BD"},
            "data_labels": {"value": True, "num_format": money_format(self.data.currency) if money else "#,##0"},
        })  # fmt: skip
        chart.set_title({"name": title, "name_font": {"size": 11}})
        chart.set_legend({"none": True})
        chart.set_y_axis({"reverse": True})
        chart.set_x_axis({"num_format": money_format(self.data.currency) if money else "#,##0",
                          "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})  # fmt: skip
        ws.insert_chart(at[0], at[1], chart, {"x_scale": 1.3, "y_scale": 1.2})

    def monthly(self, key: str, rows: list[dict[str, Any]], columns: list[Column]) -> None:
        ws = self.sheet(key)
        self.table(ws, 0, columns, rows)

    def conversion(self) -> None:
        d, f, lang = self.data, self.f, self.lang
        m: ConversionMatrix = d.matrix
        ws = self.sheet("conversion")
        ws.write_string(0, 0, i18n.sheet("conversion", lang), f.title)
        note = i18n.word(
            "conversion_note", lang, start=self.day(m.first_week.monday), end=self.day(m.last_week.sunday)
        )
        ws.write_string(1, 0, note, f.note)
        header_row, target_row = 3, 4
        ws.write_string(header_row, 0, i18n.header("manager_name", lang), f.header)
        ws.write_string(target_row, 0, i18n.header("target_row", lang), f.bold)
        ws.set_column(0, 0, 28)
        lines = 1
        for c, stage in enumerate(m.stages, start=1):
            label = transition_label(d, stage.code)
            ws.write_string(header_row, c, label, f.header)
            ws.set_column(c, c, 20)
            lines = max(lines, header_lines(label, 20))
            target = m.total[stage.code].target if stage.code in m.total else stage.target
            if target is None:
                ws.write_blank(target_row, c, None, f.percent)
            else:
                ws.write_number(target_row, c, target, f.percent)
        ws.set_row(header_row, 15 * lines + 3)
        names = [*m.managers, i18n.header("all_managers", lang)]
        for r, manager in enumerate(names, start=target_row + 1):
            ws.write_string(r, 0, manager, f.bold if r == target_row + len(names) else f.text)
            for c, stage in enumerate(m.stages, start=1):
                cell = m.total.get(stage.code) if manager == names[-1] else m.cell(manager, stage.code)
                if cell is None or cell.rate is None:
                    ws.write_blank(r, c, None, f.percent)
                else:
                    ws.write_number(r, c, cell.rate, f.percent)
        last_row = target_row + len(names)
        if m.stages:
            first_cell = xlsxwriter.utility.xl_rowcol_to_cell(target_row + 1, 1)
            target_cell = xlsxwriter.utility.xl_rowcol_to_cell(target_row, 1, row_abs=True)
            for criteria, fmt in (("<", f.red), (">=", f.green)):
                ws.conditional_format(target_row + 1, 1, last_row, len(m.stages), {
                    "type": "formula",
                    "criteria": f"=AND(ISNUMBER({first_cell}),ISNUMBER({target_cell}),"
                                f"{first_cell}{criteria}{target_cell})",
                    "format": fmt,
                })  # fmt: skip
            ws.freeze_panes(header_row + 1, 1)
            self.conversion_chart(ws, header_row, target_row, last_row, len(m.stages), last_row + 2)

    def conversion_chart(self, ws: Worksheet, header_row: int, target_row: int, all_row: int, stages: int,
                         at_row: int) -> None:  # fmt: skip
        name = ws.get_name()
        columns = self.wb.add_chart({"type": "column"})
        columns.add_series({
            "name": [name, all_row, 0], "categories": [name, header_row, 1, header_row, stages],
            "values": [name, all_row, 1, all_row, stages], "fill": {"color": "#4F81BD"},
            "data_labels": {"value": True, "num_format": "0%"},
        })  # fmt: skip
        target = self.wb.add_chart({"type": "line"})
        target.add_series({
            "name": [name, target_row, 0], "categories": [name, header_row, 1, header_row, stages],
            "values": [name, target_row, 1, target_row, stages], "line": {"color": "#C00000", "dash_type": "dash"},
            "marker": {"type": "diamond", "size": 7, "fill": {"color": "#C00000"}, "border": {"color": "#C00000"}},
        })  # fmt: skip
        columns.combine(target)
        columns.set_title({"name": i18n.word("chart_conversion", self.lang), "name_font": {"size": 11}})
        columns.set_y_axis({"num_format": "0%", "min": 0, "max": 1})
        columns.set_legend({"position": "bottom"})
        ws.insert_chart(at_row, 0, columns, {"x_scale": 1.6, "y_scale": 1.2})

    def conversion_weekly(self) -> None:
        rows = [{**r, "week_label": Week(r["week"]).label} for r in self.data.conversion.rows]
        ws = self.sheet("conversion_weekly")
        columns = [Column("week", "date", i18n.header("week_start", self.lang)),
                   Column("week_label", "text", i18n.header("week", self.lang), width=10),
                   Column("manager_name", "text"), Column("stage", "stage"), Column("reached_stage", "int"),
                   Column("reached_next_stage", "int"), Column("conversion_rate", "percent"),
                   Column("target_rate", "percent"), Column("gap", "percent")]  # fmt: skip
        last = self.table(ws, 0, columns, rows)
        if rows:
            for criteria, fmt in (("<", self.f.red), (">=", self.f.green)):
                ws.conditional_format(1, 6, last, 6, {
                    "type": "formula", "criteria": f"=AND(ISNUMBER($G2),ISNUMBER($H2),$G2{criteria}$H2)",
                    "format": fmt,
                })  # fmt: skip

    def coaching(self) -> None:
        rows = self.data.coaching
        if rows is None:
            return
        ws = self.sheet("coaching")
        columns = [
            Column("manager_name", "text"),
            Column("stage", "stage"),
            Column("conversion_rate", "percent"),
        ]
        if rows.has("target_rate"):
            columns.append(Column("target_rate", "percent"))
        columns.append(Column("coach_name", "text"))
        if rows.has("coach_rate"):
            columns.append(Column("coach_rate", "percent"))
        self.table(ws, 0, columns, rows.rows)

    def listing(self, key: str, rows: list[dict[str, Any]], columns: list[Column]) -> None:
        ws = self.sheet(key)
        self.table(ws, 0, columns, rows)

    def day(self, value: date) -> str:
        return value.strftime("%d.%m.%Y") if self.lang == "ru" else value.isoformat()


def header_lines(text: str, width: float) -> int:
    """How many lines a wrapped header needs in a column ``width`` characters wide."""
    lines, current = 1, 0
    for w in text.split():
        if current and current + 1 + len(w) > width - 1:
            lines, current = lines + 1, len(w)
        else:
            current += len(w) + (1 if current else 0)
    return lines


def transition_label(data: ReportData, code: str) -> str:
    stages = data.stages
    index = next((i for i, s in enumerate(stages) if s.code == code), None)
    name = data.stage_label(code)
    if index is None or index + 1 >= len(stages):
        return name
    return f"{name} → {stages[index + 1].name}"


def _present(rows: Any, columns: list[Column]) -> list[Column]:
    """Only the optional columns the mart has."""
    return [c for c in columns if c.kind == "link" or rows.has(c.row_key)]


def write(data: ReportData, path: Path) -> Path:
    """Write the workbook to ``path`` (atomically: a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".loss_report_", suffix=".xlsx", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                            "strings_to_numbers": False})  # fmt: skip
        wb.set_properties({"title": i18n.word("xlsx_title", data.language, date=data.as_of.isoformat()),
                           "comments": "lossdwh"})  # fmt: skip
        w = Writer(wb, data)
        _sheets(w, data)
        wb.close()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _sheets(w: Writer, d: ReportData) -> None:
    lang = d.language
    w.summary()
    stage_cols = [Column("month", "month"), Column("stage", "stage"),
                  Column("stage_code", "text", i18n.header("stage_code", lang), source="stage"),
                  Column("lost_deals", "int"),
                  Column("lost_deals_share", "percent"), Column("lost_amount_base", "money"),
                  Column("lost_amount_share", "percent")]  # fmt: skip
    by_stage = sorted(
        d.loss_by_stage.rows, key=lambda r: (-r["month"].toordinal(), d.stage_order(r["stage"]))
    )
    w.monthly("by_stage", by_stage, stage_cols)
    w.monthly("by_manager", d.loss_by_manager.rows, [
        Column("month", "month"), Column("manager_name", "text"), Column("closed_deals", "int"),
        Column("lost_deals", "int"), Column("loss_rate", "percent"), Column("lost_amount_base", "money"),
        Column("share_of_all_losses", "percent"),
    ])  # fmt: skip
    w.monthly("by_reason", d.loss_by_reason.rows, _present(d.loss_by_reason, [
        Column("month", "month"), Column("reason_name", "text"), Column("reason_code", "text"),
        Column("lost_deals", "int"), Column("lost_deals_share", "percent"), Column("lost_amount_base", "money"),
        Column("lost_amount_share", "percent"),
    ]))  # fmt: skip
    w.conversion()
    w.conversion_weekly()
    w.coaching()
    lost_cols = _present(d.lost_deals, [
        Column("deal_name", "link"), Column("deal_key", "text"), Column("source_name", "text"),
        Column("manager_name", "text"), Column("closed_at", "datetime"), Column("stage", "stage"),
        Column("stage_raw", "text"), Column("reason_name", "text"), Column("reason_code", "text"),
        Column("reason_raw", "text"), Column("comment", "text", width=50), Column("amount_base", "money"),
        Column("cycle_days", "days"), Column("customer_name", "text"), Column("customer_won_deals_before", "int"),
        Column("customer_relationship_days", "days"), Column("passed_conditional_refusal", "bool"),
    ])  # fmt: skip
    w.listing("lost_deals", d.lost_deals.rows, lost_cols)
    w.listing("dq_issues", d.dq_issues.rows, [
        Column("deal_name", "link"), Column("deal_key", "text"), Column("issue_type", "issue"),
        Column("manager_name", "text"), Column("first_detected_at", "datetime"), Column("amount_base", "money"),
    ])  # fmt: skip
    w.listing("reactivation", d.reactivation.rows, [
        Column("due_on", "date"), Column("customer_name", "text"), Column("deal_name", "link"),
        Column("deal_key", "text"), Column("loss_reason_name", "text"), Column("manager_name", "text"),
        *([Column("amount_base", "money")] if d.reactivation.has("amount_base") else []),
    ])  # fmt: skip
