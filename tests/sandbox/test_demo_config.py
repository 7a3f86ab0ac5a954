"""config/ is the demo company's configuration: what the sandbox writes for the world it serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.world.demo_config import write_demo_config
from sandbox.world.generate import generate
from tests.support import PROJECT_ROOT

URLS = {"amo_retail": "http://127.0.0.1:18081", "b24_wholesale": "http://127.0.0.1:18082",
        "erp": "http://127.0.0.1:18083", "megaplan_main": "http://127.0.0.1:18084",
        "creatio_b2b": "http://127.0.0.1:18085", "rbs": "http://127.0.0.1:18086",
        "legacy_excel": "../exports/legacy_excel"}  # fmt: skip


def body(path: Path) -> str:
    return "".join(
        line for line in path.read_text(encoding="utf-8").splitlines(True) if not line.startswith("#")
    )


@pytest.mark.parametrize("name", ["sources.yaml", "funnel.yaml", "alerts.yaml"])
def test_committed_demo_config_is_what_the_sandbox_serves(tmp_path: Path, name: str) -> None:
    write_demo_config(
        generate(42, 3000), URLS, tmp_path, smtp_port=18025, telegram_api_url="http://127.0.0.1:18026"
    )
    assert body(PROJECT_ROOT / "config" / name) == body(tmp_path / name)
