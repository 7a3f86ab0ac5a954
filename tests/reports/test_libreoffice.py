"""A real spreadsheet application opens the report: LibreOffice (headless) converts the
xlsx to PDF without errors, every sheet printed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from dwh.config.models import FunnelConfig
from dwh.reports import run
from dwh.reports.settings import ReportSettings
from dwh.warehouse import Target
from tests.reports.marts import AS_OF


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        pytest.fail(
            "LibreOffice is not installed: apt-get install libreoffice-calc (the CI script installs it)"
        )
    return found


def test_libreoffice_converts_the_report_to_pdf(
    report_target: Target, funnel: FunnelConfig, tmp_path: Path
) -> None:
    settings = ReportSettings(language="ru", export_dir=tmp_path / "exports")
    with psycopg.connect(report_target.conninfo()) as conn:
        xlsx, data = run.excel_report(conn, funnel, settings, AS_OF)
    out = tmp_path / "pdf"
    result = subprocess.run(
        [soffice(), "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}",
         "--convert-to", "pdf", "--outdir", str(out), str(xlsx)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stderr, result.stderr
    pdf = out / "loss_report_2025-03-12.pdf"
    assert pdf.exists(), result.stdout + result.stderr
    body = pdf.read_bytes()
    assert body.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", body))
    assert pages >= 10, f"every sheet printed, found {pages} pages"
    assert len(data.lost_deals.rows) == 9
