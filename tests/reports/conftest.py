"""The report tests' warehouse: hand-made marts in a database of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dwh.config import load_funnel
from dwh.config.models import FunnelConfig
from dwh.warehouse import Target
from tests.reports.marts import report_warehouse, write_config


@pytest.fixture(scope="session")
def report_target(warehouse: Target) -> Target:
    return report_warehouse(warehouse)


@pytest.fixture
def report_db(report_target: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(report_target.conninfo(), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def report_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("report-config"))


@pytest.fixture(scope="session")
def funnel(report_config: Path) -> FunnelConfig:
    return load_funnel(report_config)
