"""A file connection in sources.yaml: a folder or a file, a column map by meaning, CSV settings,
an optional stage history; one clear message per mistake, naming the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dwh.config import ConfigError, load_config
from dwh.config.models import FILE_COLUMNS, FileSource
from tests.support import PROJECT_ROOT

EXAMPLE = """
  - name: crm_export
    type: file
    path: /srv/exports/deals/
    encoding: cp1251
    columns:
      deal_id: "Номер сделки"
      stage: "Этап"
      manager: "Ответственный"
      amount: "Сумма"
      created_at: "Дата создания"
      closed_at: "Дата закрытия"
      status: "Статус"
      loss_reason: "Причина отказа"
      comment: "Комментарий"
      customer_name: "Клиент"
      customer_inn: "ИНН"
"""
FULL = """
  - name: funnel_xlsx
    type: file
    path: exports/funnel.xlsx
    delimiter: ","
    sheet: Сделки
    timezone: Asia/Novosibirsk
    currency: USD
    pipeline_name: Опт
    columns: {deal_id: "ID", stage: "Stage"}
    status_values: {open: ["Отложена"], lost: ["Отменена", "Слив"]}
    history_path: exports/history/
    history_columns: {deal_id: "ID", stage: "New stage", changed_at: "When", manager: "Who"}
"""


@pytest.fixture
def config_dir(tmp_path: Path, demo_env: dict[str, str]) -> Path:
    target = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    return target


def with_sources(directory: Path, *entries: str) -> Path:
    """sources.yaml with the connections written in ``entries`` (YAML list items) appended."""
    path = directory / "sources.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for entry in entries:
        data["sources"].extend(yaml.safe_load(entry))
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return directory


def demo_connections(directory: Path) -> int:
    return len(yaml.safe_load((directory / "sources.yaml").read_text(encoding="utf-8"))["sources"])


def error_of(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    return str(caught.value)


def test_the_documented_example_and_every_setting_load(config_dir: Path) -> None:
    config = load_config(with_sources(config_dir, EXAMPLE, FULL))
    example = config.sources.get("crm_export")
    assert isinstance(example, FileSource)
    assert example.encoding == "cp1251" and example.delimiter is None and example.history_path is None
    assert example.columns["deal_id"] == "Номер сделки" and set(example.columns) < set(FILE_COLUMNS)
    assert example.timezone == "Europe/Moscow" and example.currency == "RUB" and example.status_values == {}
    full = config.sources.get("funnel_xlsx")
    assert isinstance(full, FileSource)
    assert full.encoding == "auto" and full.delimiter == "," and full.sheet == "Сделки"
    assert full.currency == "USD" and full.pipeline_name == "Опт" and full.timezone == "Asia/Novosibirsk"
    assert full.status_values == {"open": ["Отложена"], "lost": ["Отменена", "Слив"]}
    assert full.history_columns["changed_at"] == "When"
    assert [s.name for s in config.sources.by_type("file")] == ["legacy_excel", "crm_export", "funnel_xlsx"]


BROKEN = {
    "no deal id column": (
        EXAMPLE.replace('      deal_id: "Номер сделки"\n', ""),
        ["sources.yaml", "sources[{i}].columns", "a column for deal_id, found none"],
    ),
    "an unknown meaning": (
        EXAMPLE.replace('      stage: "Этап"\n', '      etap: "Этап"\n'),
        ["sources[{i}].columns", "column meanings among deal_id, deal_name, pipeline, stage", "found etap"],
    ),
    "one column for two meanings": (
        EXAMPLE.replace('      comment: "Комментарий"\n', '      comment: "Причина отказа"\n'),
        ["sources[{i}].columns", "one meaning per column", "'Причина отказа' mapped twice"],
    ),
    "an empty column name": (
        EXAMPLE.replace('      stage: "Этап"\n', '      stage: ""\n'),
        ["sources[{i}].columns", "a column name for stage, found an empty one"],
    ),
    "an unknown encoding": (
        EXAMPLE.replace("encoding: cp1251", "encoding: koi8-r"),
        ["sources[{i}].encoding", "'auto', 'utf-8', 'cp1251' or 'utf-8-sig'", "'koi8-r'"],
    ),
    "an unknown separator": (
        FULL.replace('delimiter: ","', 'delimiter: "|"'),
        ["sources[{i}].delimiter", "'|'"],
    ),
    "a history without its columns": (
        FULL.replace('    history_columns: {deal_id: "ID", stage: "New stage", changed_at: "When", manager: "Who"}\n', ""),
        ["sources[{i}]", "history_columns naming the history file's deal_id, stage, changed_at column(s)"],
    ),
    "a history missing its date column": (
        FULL.replace(' changed_at: "When",', ""),
        ["sources[{i}]", "history file's changed_at column(s)"],
    ),
    "history columns without a history": (
        FULL.replace("    history_path: exports/history/\n", ""),
        ["sources[{i}]", "history_path for the history_columns given"],
    ),
    "a status that is none of the three": (
        FULL.replace("lost: [", "failed: ["),
        ["sources[{i}].status_values.failed", "'open', 'won' or 'lost'"],
    ),
    "a currency that is not a code": (
        FULL.replace("currency: USD", "currency: руб."),
        ["sources[{i}].currency", "'руб.'"],
    ),
    "no path": (
        EXAMPLE.replace("    path: /srv/exports/deals/\n", ""),
        ["sources[{i}].path", "expected this key, found it missing"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_each_mistake_gets_its_own_clear_message(config_dir: Path, case: str) -> None:
    entry, fragments = BROKEN[case]
    expected = [f.replace("{i}", str(demo_connections(config_dir))) for f in fragments]
    message = error_of(with_sources(config_dir, entry))
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert message.count("\n") <= 3, f"one message, not a dump: {message}"
