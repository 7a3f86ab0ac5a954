"""The Excel report read back with openpyxl: sheets and headers in both languages, numbers
equal to the mart tables, links to the CRM cards, number formats, native charts, frozen
headers, autofilters, conditional formatting against the targets, nothing personal."""

from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import psycopg
import pytest

from dwh.config.models import FunnelConfig
from dwh.reports import run
from dwh.reports.settings import ReportSettings
from dwh.warehouse import Target
from tests.reports.marts import AS_OF, CLIENT_EMAIL, IVANOV, PHONE, SIDOROV, totals

PERIOD_START = date(2024, 4, 1)  # twelve months back from March 2025
WINDOW = (date(2024, 12, 16), date(2025, 3, 3))  # twelve weeks of creation up to 2025-W10
RU_SHEETS = ["Сводка", "Потери по этапам", "Потери по менеджерам", "Потери по причинам", "Конверсия",
             "Конверсия по неделям", "Кто у кого учится", "Проигранные сделки", "Нарушения", "Повторный контакт"]  # fmt: skip
EN_SHEETS = ["Summary", "Loss by stage", "Loss by manager", "Loss by reason", "Conversion", "Conversion by week",
             "Coaching pairs", "Lost deals", "DQ issues", "Reactivation"]  # fmt: skip


@pytest.fixture(scope="module")
def workbooks(report_target: Target, funnel: FunnelConfig, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Path]:  # fmt: skip
    out = {}
    with psycopg.connect(report_target.conninfo()) as conn:
        for lang in ("ru", "en"):
            settings = ReportSettings(language=lang, export_dir=tmp_path_factory.mktemp(f"exports-{lang}"))
            path, _ = run.excel_report(conn, funnel, settings, AS_OF)
            out[lang] = path
    return out


@pytest.fixture(scope="module")
def ru(workbooks: dict[str, Path]) -> openpyxl.Workbook:
    return openpyxl.load_workbook(workbooks["ru"])


@pytest.fixture(scope="module")
def en(workbooks: dict[str, Path]) -> openpyxl.Workbook:
    return openpyxl.load_workbook(workbooks["en"])


def rows(ws) -> list[list]:
    return [list(r) for r in ws.iter_rows(min_row=2, values_only=True)]


def header(ws, row: int = 1) -> list:
    return [c.value for c in ws[row] if c.value is not None]


def query(conn: psycopg.Connection, text: str, *params) -> list[tuple]:
    return conn.execute(text, params).fetchall()


def test_file_is_named_by_its_date(workbooks: dict[str, Path]) -> None:
    assert workbooks["ru"].name == "loss_report_2025-03-12.xlsx"
    assert zipfile.is_zipfile(workbooks["ru"])


def test_sheets_and_headers_in_both_languages(ru: openpyxl.Workbook, en: openpyxl.Workbook) -> None:
    assert ru.sheetnames == RU_SHEETS
    assert en.sheetnames == EN_SHEETS
    assert header(ru["Потери по этапам"]) == ["Месяц", "Этап", "Код этапа", "Проиграно сделок", "Доля сделок",
                                             "Потеряно, сумма", "Доля суммы"]  # fmt: skip
    assert header(en["Loss by stage"]) == ["Month", "Stage", "Stage code", "Lost deals", "Share of deals",
                                          "Lost amount", "Share of amount"]  # fmt: skip
    assert header(ru["Проигранные сделки"])[:4] == [
        "Сделка (ссылка на CRM)",
        "Ключ сделки",
        "Источник",
        "Менеджер",
    ]
    assert header(en["Lost deals"])[:4] == ["Deal (link to the CRM)", "Deal key", "Source", "Manager"]
    assert header(en["Reactivation"])[:2] == ["Contact on", "Customer"]
    assert ru["Сводка"]["A1"].value == "Проигранные сделки: отчёт на 12.03.2025"
    assert en["Summary"]["A1"].value == "Lost deals: report as of 2025-03-12"
    # stage names come from funnel.yaml, in the report's language of the company
    assert [r[1] for r in rows(en["Loss by stage"])][:4] == ["Новая заявка", "Первичный контакт", "Презентация",
                                                            "Договор"]  # fmt: skip


def test_loss_sheets_hold_the_mart_rows_of_the_period(
    ru: openpyxl.Workbook, report_db: psycopg.Connection
) -> None:
    expected = query(report_db, """select month, canonical_stage, lost_deals, lost_deals_share, lost_amount_base,
                                          lost_amount_share from marts.rpt_loss_by_stage
                                   where month between %s and %s""", PERIOD_START, AS_OF)  # fmt: skip
    assert len(expected) >= 8
    got = {(r[0].date(), r[2]): (r[3], r[4], r[5], r[6]) for r in rows(ru["Потери по этапам"])}
    assert len(got) == len(expected)
    for month, stage, deals, share, amount, amount_share in expected:
        assert got[(month, stage)] == pytest.approx((deals, float(share), float(amount), float(amount_share)))
    assert date(2024, 1, 1) not in {m for m, _ in got}, "months before the period stay out"

    expected = query(report_db, """select month, manager_name, closed_deals, lost_deals, loss_rate, lost_amount_base,
                                          share_of_all_losses from marts.rpt_loss_by_manager
                                   where month between %s and %s""", PERIOD_START, AS_OF)  # fmt: skip
    got_rows = {(r[0].date(), r[1]): tuple(r[2:7]) for r in rows(ru["Потери по менеджерам"])}
    assert got_rows == {(m, n): pytest.approx(tuple(float(v) for v in rest)) for m, n, *rest in expected}

    expected = query(report_db, """select month, loss_reason_code, lost_deals, lost_amount_base
                                   from marts.rpt_loss_by_reason where month between %s and %s""",
                     PERIOD_START, AS_OF)  # fmt: skip
    got_rows = {(r[0].date(), r[2]): (r[3], r[5]) for r in rows(ru["Потери по причинам"])}
    assert got_rows == {(m, c): pytest.approx((d, float(a))) for m, c, d, a in expected}


def test_summary_totals_equal_the_marts(ru: openpyxl.Workbook, report_db: psycopg.Connection) -> None:
    ws = ru["Сводка"]
    cells = {
        ws.cell(r, 1).value: [ws.cell(r, c).value for c in range(2, 7)] for r in range(1, ws.max_row + 1)
    }
    block_totals = [[ws.cell(r, c).value for c in range(2, 7)] for r in range(1, ws.max_row + 1)
                    if ws.cell(r, 1).value == "Итого"]  # fmt: skip
    [(lost, amount)] = query(report_db, """select sum(lost_deals), sum(lost_amount_base) from marts.rpt_loss_by_stage
                                          where month between %s and %s""", PERIOD_START, AS_OF)  # fmt: skip
    assert lost == 9
    assert cells["Проиграно сделок"][0] == lost
    assert cells["Потеряно, сумма"][0] == pytest.approx(float(amount))
    [(closed, lost_m)] = query(report_db, """select sum(closed_deals), sum(lost_deals) from marts.rpt_loss_by_manager
                                            where month between %s and %s""", PERIOD_START, AS_OF)  # fmt: skip
    assert cells["Доля проигранных среди закрытых"][0] == pytest.approx(float(lost_m / closed))
    assert cells["Открытых нарушений по проигранным сделкам"][0] == 2
    assert cells["Клиентов к повторному контакту"][0] == 2
    for stage, name in (("contact", "Первичный контакт"), ("proposal", "Презентация")):
        [(deals, money)] = query(report_db, """select sum(lost_deals), sum(lost_amount_base) from marts.rpt_loss_by_stage
                                              where canonical_stage = %s and month between %s and %s""",
                                 stage, PERIOD_START, AS_OF)  # fmt: skip
        assert cells[name][0] == deals
        assert cells[name][1] == pytest.approx(float(deals / lost))
        assert cells[name][2] == pytest.approx(float(money))
    [(deals, money)] = query(report_db, """select sum(lost_deals), sum(lost_amount_base) from marts.rpt_loss_by_reason
                                          where loss_reason_code = 'high_price' and month between %s and %s""",
                             PERIOD_START, AS_OF)  # fmt: skip
    assert cells["Высокая цена"][:3] == pytest.approx([deals, float(deals / lost), float(money)])
    assert [t[0] for t in block_totals[:2]] == [lost, lost], "stage and reason blocks"
    assert block_totals[2][:2] == [closed, lost_m], "manager block: closed and lost"


def test_conversion_matrix_is_the_weekly_review_table(
    ru: openpyxl.Workbook, report_db: psycopg.Connection
) -> None:
    ws = ru["Конверсия"]
    assert ws["A4"].value == "Менеджер"
    assert [ws.cell(4, c).value for c in range(2, 6)] == [
        "Новая заявка → Первичный контакт", "Первичный контакт → Презентация", "Презентация → Договор",
        "Договор → Оплачено"]  # fmt: skip
    assert [ws.cell(5, c).value for c in range(1, 6)] == ["Цель", 1.0, 0.8, 0.8, 0.95]
    table = {ws.cell(r, 1).value: [ws.cell(r, c).value for c in range(2, 6)] for r in range(6, 9)}
    stages = ["new", "contact", "proposal", "contract"]
    for key, name in (IVANOV, SIDOROV):
        sums = query(report_db, """select canonical_stage, sum(reached_next_stage)::numeric / sum(reached_stage)
                                   from marts.rpt_funnel_conversion
                                   where manager_key = %s and week_start between %s and %s
                                     and reached_next_stage is not null group by 1""", key, *WINDOW)  # fmt: skip
        assert table[name] == pytest.approx([float(dict(sums)[s]) for s in stages])
        assert table[name] == pytest.approx([m / r for r, m in (totals((key, name), s) for s in stages)])
    # the worked example: Ivanov below target on the first two steps, Sidorov on the last two
    assert [v < t for v, t in zip(table[IVANOV[1]], [1.0, 0.8, 0.8, 0.95], strict=True)] == [
        True,
        True,
        False,
        False,
    ]
    assert [v < t for v, t in zip(table[SIDOROV[1]], [1.0, 0.8, 0.8, 0.95], strict=True)] == [
        True,
        False,
        True,
        True,
    ]
    assert table["Все менеджеры"][0] == pytest.approx((80 + 96) / 200)
    rules = [(str(cf.sqref), rule.formula[0], rule.dxf.fill.bgColor.rgb) for cf in ws.conditional_formatting
             for rule in cf.rules]  # fmt: skip
    assert ("B6:E8", "AND(ISNUMBER(B6),ISNUMBER(B$5),B6<B$5)", "FFF8CBAD") in rules  # red below the target
    assert ("B6:E8", "AND(ISNUMBER(B6),ISNUMBER(B$5),B6>=B$5)", "FFC6EFCE") in rules  # green at or above it
    assert ws.freeze_panes == "B5"


def test_weekly_conversion_rows_equal_the_mart(ru: openpyxl.Workbook, report_db: psycopg.Connection) -> None:
    expected = query(report_db, """select week_start, manager_name, canonical_stage, reached_stage, reached_next_stage,
                                          conversion_rate, target_rate from marts.rpt_funnel_conversion
                                   where week_start between %s and %s""", PERIOD_START, AS_OF)  # fmt: skip
    ws = ru["Конверсия по неделям"]
    got = rows(ws)
    assert len(got) == len(expected) == 22
    assert {r[1] for r in got} == {"2024-W40", "2025-W09", "2025-W10"}
    names = {"new": "Новая заявка", "contact": "Первичный контакт", "proposal": "Презентация", "contract": "Договор",
             "paid": "Оплачено"}  # fmt: skip
    got_set = {(r[0].date(), r[2], r[3], r[4], r[5], None if r[6] is None else round(r[6], 6)) for r in got}
    assert got_set == {(w, m, names[s], a, b, None if c is None else round(float(c), 6))
                       for w, m, s, a, b, c, _ in expected}  # fmt: skip
    assert {str(cf.sqref) for cf in ws.conditional_formatting} == {f"G2:G{len(got) + 1}"}


def test_coaching_pairs_sheet(ru: openpyxl.Workbook) -> None:
    got = [(r[0], r[1], r[4]) for r in rows(ru["Кто у кого учится"])]
    assert got == [(IVANOV[1], "Новая заявка", SIDOROV[1]), (IVANOV[1], "Первичный контакт", SIDOROV[1]),
                   (SIDOROV[1], "Презентация", IVANOV[1]), (SIDOROV[1], "Договор", IVANOV[1])]  # fmt: skip


def test_lost_deals_link_to_their_crm_cards(ru: openpyxl.Workbook, report_db: psycopg.Connection) -> None:
    ws = ru["Проигранные сделки"]
    expected = dict(query(report_db, """select deal_key, crm_url from marts.fct_lost_deals
                                        where closed_at >= '2024-04-01 00:00+03' order by closed_at desc"""))  # fmt: skip
    assert len(expected) == 9
    keys = [ws.cell(r, 2).value for r in range(2, ws.max_row + 1)]
    assert keys == list(expected), "newest first, only the period"
    for r in range(2, ws.max_row + 1):
        key, cell = ws.cell(r, 2).value, ws.cell(r, 1)
        if key == "amo_retail:4":  # a javascript: link is not a link
            assert cell.hyperlink is None
            assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK"), (
                "text stays text, never a formula"
            )
        else:
            assert cell.hyperlink.target == expected[key]
            assert cell.value == f"Поставка №{key.split(':')[1]}"
    [amount_col] = [c for c in range(1, ws.max_column + 1) if ws.cell(1, c).value == "Сумма"]
    amounts = {ws.cell(r, 2).value: ws.cell(r, amount_col).value for r in range(2, ws.max_row + 1)}
    assert amounts["amo_retail:2"] == pytest.approx(45_500.5)
    [closed_col] = [c for c in range(1, ws.max_column + 1) if ws.cell(1, c).value == "Закрыта"]
    assert ws.cell(2, closed_col).value == datetime(2025, 3, 9, 12, 0), (
        "wall-clock time in funnel.yaml's timezone"
    )


def test_open_issues_and_reactivation_lists(ru: openpyxl.Workbook, en: openpyxl.Workbook) -> None:
    issues = rows(ru["Нарушения"])
    assert [(r[1], r[2]) for r in issues] == [("amo_retail:2", "проиграна слишком быстро"),
                                              ("amo_retail:3", "нет комментария")]  # fmt: skip
    assert [r[2] for r in rows(en["DQ issues"])] == ["lost too fast", "no comment"]
    assert ru["Нарушения"]["A2"].hyperlink.target == "http://127.0.0.1:18081/leads/detail/2"
    due = rows(ru["Повторный контакт"])
    assert [(r[0].date(), r[1], r[3]) for r in due] == [(date(2025, 4, 21), "ООО «Клиент 5»", "amo_retail:5"),
                                                       (date(2025, 5, 2), "ООО «Клиент 1»", "amo_retail:1")]  # fmt: skip
    assert ru["Повторный контакт"]["C2"].hyperlink.target == "http://127.0.0.1:18081/leads/detail/5"


def test_number_formats_widths_frozen_headers_and_filters(
    ru: openpyxl.Workbook, en: openpyxl.Workbook
) -> None:
    ws = ru["Потери по этапам"]
    assert ws["F2"].number_format == '#,##0 "₽"'
    assert ws["E2"].number_format == ws["G2"].number_format == "0.0%"
    assert ws["A2"].number_format == "mm.yyyy"
    assert en["Loss by stage"]["A2"].number_format == "yyyy-mm"
    assert ru["Сводка"]["B6"].number_format == '#,##0 "₽"'
    for name in RU_SHEETS[1:4] + RU_SHEETS[5:]:
        sheet = ru[name]
        assert sheet.freeze_panes == "A2", name
        assert (
            sheet.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(sheet.max_column)}{sheet.max_row}"
        )
        widths = [sheet.column_dimensions[openpyxl.utils.get_column_letter(c)].width
                  for c in range(1, sheet.max_column + 1)]  # fmt: skip
        assert all(8 <= w <= 61 for w in widths), (name, widths)
    assert ru["Проигранные сделки"].column_dimensions["K"].width > 40, "the comment column is wide"


def test_native_charts(ru: openpyxl.Workbook) -> None:
    summary = ru["Сводка"]._charts
    assert len(summary) == 4
    assert {type(c).__name__ for c in summary} == {"BarChart"}
    assert all(c.type == "bar" for c in summary), "horizontal bars"
    series = [s.val.numRef.f for c in summary for s in c.series]
    assert series[0].startswith("Сводка!$B$") or series[0].startswith("'Сводка'!$B$")
    [conversion] = ru["Конверсия"]._charts
    assert conversion.type == "col"
    assert conversion.series[0].val.numRef.f.endswith("$B$8:$E$8"), "all managers' row"


def test_nothing_personal_or_executable_leaves(workbooks: dict[str, Path]) -> None:
    for path in workbooks.values():
        with zipfile.ZipFile(path) as z:
            xml = "".join(
                z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith((".xml", ".rels"))
            )
        assert CLIENT_EMAIL not in xml
        assert PHONE not in xml and "123-45-67" not in xml
        assert 'Target="javascript' not in xml, "only http(s) links"
        assert "<f>" not in xml, "no formulas in the workbook: text that looks like one stays text"
        assert "[тел.]" in xml and "[e-mail]" in xml, "the comment is kept, masked"


def test_a_missing_mart_is_one_clear_error(
    report_target: Target, funnel: FunnelConfig, tmp_path: Path
) -> None:
    from dwh.reports.marts import MartError

    expected = r"nowhere\.rpt_loss_by_stage is missing: build the marts first"
    with psycopg.connect(report_target.conninfo()) as conn, pytest.raises(MartError, match=expected):
        run.excel_report(conn, funnel, ReportSettings(export_dir=tmp_path), AS_OF, schema="nowhere")
    assert not list(tmp_path.iterdir()), "nothing half-written"


def test_empty_marts_give_a_valid_report_and_e_mail(
    report_db: psycopg.Connection, report_target: Target, funnel: FunnelConfig, tmp_path: Path
) -> None:
    report_db.execute("drop schema if exists empty_marts cascade")
    report_db.execute("create schema empty_marts")
    for (table,) in query(
        report_db, "select table_name from information_schema.tables where table_schema = 'marts'"
    ):
        report_db.execute(f"create table empty_marts.{table} (like marts.{table})")
    try:
        with psycopg.connect(report_target.conninfo(), autocommit=True) as conn:
            settings = ReportSettings(export_dir=tmp_path)
            path, data = run.excel_report(conn, funnel, settings, AS_OF, schema="empty_marts")
            weekly = run.weekly_report(conn, funnel, settings, AS_OF, path, schema="empty_marts")
    finally:
        report_db.execute("drop schema empty_marts cascade")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == RU_SHEETS
    assert wb["Сводка"]["B5"].value == 0
    assert wb["Сводка"]._charts == [] and wb["Конверсия"]._charts == []
    assert wb["Проигранные сделки"].max_row == 1
    assert "За неделю проиграно 0 сделок" in weekly.email.html
    assert "Все менеджеры на уровне целей" in weekly.email.html
