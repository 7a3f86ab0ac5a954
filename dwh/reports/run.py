"""The two deliverables from the marts: the Excel report and the weekly funnel report."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from dwh.config.models import FunnelConfig
from dwh.reports import data as report_data
from dwh.reports import weekly, xlsx
from dwh.reports.settings import ReportSettings


def today(funnel: FunnelConfig) -> date:
    """Today in the company's timezone."""
    return datetime.now(ZoneInfo(funnel.timezone)).date()


def excel_report(
    conn: psycopg.Connection,
    funnel: FunnelConfig,
    settings: ReportSettings,
    as_of: date,
    schema: str = "marts",
) -> tuple[Path, report_data.ReportData]:
    """Write ``loss_report_<as_of>.xlsx`` into the export folder; returns its path and what it holds."""
    data = report_data.load(conn, funnel, settings, as_of, schema)
    path = xlsx.write(data, xlsx.report_path(settings.export_dir, as_of))
    return path, data


def weekly_report(
    conn: psycopg.Connection,
    funnel: FunnelConfig,
    settings: ReportSettings,
    as_of: date,
    attachment: Path | None,
    schema: str = "marts",
) -> weekly.WeeklyReport:
    """The weekly funnel report for the last complete week before ``as_of``."""
    data = report_data.load(conn, funnel, settings, as_of, schema)
    losses = weekly.loss_structure(conn, data, settings.compare_weeks, schema)
    return weekly.compose(data, losses, attachment)
