"""The pieces the reports are made of: weeks and months, masking, links, settings, the
marts' column lookup, Russian plurals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from dwh.reports import marts
from dwh.reports.periods import as_date, last_complete_week, months_back
from dwh.reports.safe import redact, web_link
from dwh.reports.settings import ReportSettings, SettingsError
from dwh.reports.weekly import deals_word
from dwh.reports.xlsx import header_lines, money_format

MSK = ZoneInfo("Europe/Moscow")


def test_weeks_and_months() -> None:
    assert as_date("2025-W10") == date(2025, 3, 3)
    assert as_date("2025W02") == date(2025, 1, 6)
    assert as_date("2025-03") == date(2025, 3, 1)
    assert as_date("2025-03-05T00:00:00") == date(2025, 3, 5)
    assert as_date(datetime(2025, 3, 2, 22, 30, tzinfo=UTC), MSK) == date(2025, 3, 3), (
        "taken in the company's zone"
    )
    with pytest.raises(
        ValueError, match="expected a date, a YYYY-MM month or a YYYY-Www week, found 'March'"
    ):
        as_date("March")
    assert last_complete_week(date(2025, 3, 10)).label == "2025-W10"  # a Monday: last week is complete
    assert last_complete_week(date(2025, 3, 9)).label == "2025-W09"  # a Sunday: its week is not over
    assert last_complete_week(date(2025, 1, 2)).label == "2024-W52"
    assert months_back(date(2025, 3, 12), 12) == date(2024, 4, 1)
    assert months_back(date(2025, 1, 31), 1) == date(2025, 1, 1)
    assert months_back(date(2025, 1, 15), 2) == date(2024, 12, 1)


@pytest.mark.parametrize(
    "phone", ["+7 (916) 123-45-67", "89161234567", "8-916-123-45-67", "+7 916 123 45 67"]
)
def test_phones_are_masked(phone: str) -> None:
    assert redact(f"перезвонить {phone} после обеда") == "перезвонить [тел.] после обеда"


@pytest.mark.parametrize("text", ["сумма 1 200 000 руб.", "счёт №123456 от 12.03.2025", "скидка 15%, 3 шт."])
def test_numbers_that_are_not_phones_stay(text: str) -> None:
    assert redact(text) == text


def test_emails_and_control_characters() -> None:
    assert redact("пишите на Ivan.Petrov+crm@mail.romashka.ru\x07!") == "пишите на [e-mail] !"
    assert redact(None) is None


def test_only_web_links_are_links() -> None:
    assert (
        web_link("https://romashka.amocrm.ru/leads/detail/7") == "https://romashka.amocrm.ru/leads/detail/7"
    )
    for bad in (
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://a b",
        "",
        None,
        "http://x/" + "a" * 3000,
    ):
        assert web_link(bad) is None


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DWH_DATA_DIR", str(tmp_path))
    for name in ("DWH_REPORT_LANGUAGE", "DWH_EXPORT_DIR", "DWH_REPORT_MONTHS", "DWH_REPORT_AS_OF"):
        monkeypatch.delenv(name, raising=False)
    default = ReportSettings.from_env()
    assert (default.language, default.export_dir, default.outbox_dir) == (
        "ru",
        tmp_path / "exports",
        tmp_path / "outbox",
    )
    monkeypatch.setenv("DWH_REPORT_LANGUAGE", "EN")
    monkeypatch.setenv("DWH_EXPORT_DIR", str(tmp_path / "share"))
    assert (ReportSettings.from_env().language, ReportSettings.from_env().export_dir) == (
        "en",
        tmp_path / "share",
    )
    monkeypatch.setenv("DWH_REPORT_LANGUAGE", "de")
    with pytest.raises(SettingsError, match="DWH_REPORT_LANGUAGE: expected ru or en, found 'de'"):
        ReportSettings.from_env()
    monkeypatch.setenv("DWH_REPORT_LANGUAGE", "ru")
    monkeypatch.setenv("DWH_REPORT_AS_OF", "2026-11-01")
    assert ReportSettings.from_env().as_of == date(2026, 11, 1)
    monkeypatch.setenv("DWH_REPORT_AS_OF", "1 Nov")
    with pytest.raises(SettingsError, match="DWH_REPORT_AS_OF: expected a date as YYYY-MM-DD, found '1 Nov'"):
        ReportSettings.from_env()
    monkeypatch.delenv("DWH_REPORT_AS_OF")
    monkeypatch.setenv("DWH_REPORT_MONTHS", "a year")
    with pytest.raises(SettingsError, match="DWH_REPORT_MONTHS: expected a whole number from 1 to 120"):
        ReportSettings.from_env()


def test_mart_columns_by_their_names_or_a_clear_error(report_db: psycopg.Connection) -> None:
    report_db.execute("drop schema if exists parts_probe cascade")
    report_db.execute("create schema parts_probe")
    report_db.execute("""create table parts_probe.rpt_loss_by_stage as select '2025-03'::text as month_start,
                         'new'::text as canonical_stage, 2 as lost_deals, 1.0 as lost_deals_share,
                         100.0 as lost_amount_base""")  # fmt: skip
    with pytest.raises(marts.MartError) as missing:
        marts.fetch(report_db, "parts_probe", marts.LOSS_BY_STAGE)
    assert str(missing.value) == (
        "parts_probe.rpt_loss_by_stage: expected the column(s) lost_amount_share, found only month_start, "
        "canonical_stage, lost_deals, lost_deals_share, lost_amount_base"
    )
    report_db.execute(
        "alter table parts_probe.rpt_loss_by_stage add column lost_amount_share numeric default 1"
    )
    rows = marts.fetch(report_db, "parts_probe", marts.LOSS_BY_STAGE)
    assert rows is not None and rows.rows == [{"month": "2025-03", "stage": "new", "lost_deals": 2,
                                               "lost_deals_share": 1, "lost_amount_base": 100,
                                               "lost_amount_share": 1}]  # fmt: skip
    assert marts.fetch(report_db, "parts_probe", marts.COACHING_PAIRS) is None, (
        "an optional mart may be absent"
    )
    report_db.execute("drop schema parts_probe cascade")


def test_words_and_formats() -> None:
    assert [deals_word(n, "ru") for n in (1, 2, 5, 11, 21, 0.8)] == [
        "1 сделка", "2 сделки", "5 сделок", "11 сделок", "21 сделка", "0,8 сделки"]  # fmt: skip
    assert deals_word(1, "en") == "1 deal" and deals_word(3, "en") == "3 deals"
    assert money_format("RUB") == '#,##0 "₽"'
    assert money_format("USD") == '#,##0 "$"'
    assert money_format("KGS") == '#,##0 "KGS"'
    assert header_lines("Первичный контакт → Презентация", 20) == 2
    assert header_lines("Месяц", 10) == 1
