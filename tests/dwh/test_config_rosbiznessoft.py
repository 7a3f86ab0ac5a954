"""A RosBiznesSoft connection in sources.yaml: the installation's names by meaning, defaults for
what is not named, and one clear message per mistake, naming the file and the key and never a
secret's value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dwh.config import ConfigError, load_config
from dwh.config.models import RBS_FIELDS, RBS_OBJECTS, RosBiznesSoftSource
from dwh.config.secrets import Secret
from tests.support import PROJECT_ROOT

SECRET = "rbs-Secret-That-Must-Not-Leak"
PLAIN = """
  - name: rbs_plain
    type: rosbiznessoft
    base_url: https://crm.firma.local/
    username: ${RBS_USER}
    password: ${RBS_PASSWORD}
"""
NAMED = """
  - name: rbs_named
    type: rosbiznessoft
    base_url: https://firma.rbs360.ru
    username: ${RBS_USER}
    password: ${RBS_PASSWORD}
    timezone: Asia/Yekaterinburg
    page_size: 250
    requests_per_second: 2
    objects:
      deals: documents.sdelki
      stage_history: ""
    fields:
      deal_stage: etap
      deal_comment: ""
    stage_results: {"10": open, "20": won, "30": lost}
"""


@pytest.fixture
def config_dir(tmp_path: Path, demo_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("RBS_USER", "RBS_PASSWORD"):
        monkeypatch.setenv(name, SECRET)
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
    message = str(caught.value)
    assert SECRET not in message
    return message


def test_defaults_and_the_installation_s_own_names_load(config_dir: Path) -> None:
    config = load_config(with_sources(config_dir, PLAIN, NAMED))
    plain = config.sources.get("rbs_plain")
    assert isinstance(plain, RosBiznesSoftSource)
    assert plain.base_url == "https://crm.firma.local" and plain.timezone == "Europe/Moscow"
    assert isinstance(plain.password, Secret) and plain.password.get() == SECRET
    assert plain.page_size == 100 and plain.requests_per_second == 3.0
    assert plain.stage_results == {"1": "open", "2": "won", "3": "lost"}
    assert all(plain.object_name(m) == n for m, n in RBS_OBJECTS.items())
    assert all(plain.field_name(m) == n for m, n in RBS_FIELDS.items())
    named = config.sources.get("rbs_named")
    assert isinstance(named, RosBiznesSoftSource)
    assert named.object_name("deals") == "documents.sdelki" and named.object_name("stage_history") == ""
    assert named.object_name("companies") == "references.companies"  # not named: the default
    assert named.field_name("deal_stage") == "etap" and named.field_name("deal_comment") == ""
    assert named.stage_results == {"10": "open", "20": "won", "30": "lost"}
    assert named.page_size == 250 and named.timezone == "Asia/Yekaterinburg"
    assert SECRET not in repr(config)
    assert [s.name for s in config.sources.by_type("rosbiznessoft")] == ["rbs", "rbs_plain", "rbs_named"]


BROKEN = {
    "an unknown object meaning": (
        NAMED.replace("      deals: documents.sdelki\n", "      sdelki: documents.sdelki\n"),
        ["sources.yaml", "sources[{i}].objects", "object meanings among deals, pipelines", "found sdelki"],
    ),
    "an unknown field meaning": (
        NAMED.replace("      deal_stage: etap\n", "      stage: etap\n"),
        ["sources.yaml", "sources[{i}].fields", "field meanings among id, visible", "found stage"],
    ),
    "a required object left empty": (
        NAMED.replace("      deals: documents.sdelki\n", "      deals: ''\n"),
        ["sources[{i}].objects", "a name for deals", "found an empty one"],
    ),
    "a required field left empty": (
        NAMED.replace("      deal_stage: etap\n", "      deal_stage: ''\n"),
        ["sources[{i}].fields", "a name for deal_stage", "found an empty one"],
    ),
    "a result that is no status": (
        NAMED.replace('"30": lost', '"30": failed'),
        ["sources[{i}].stage_results.30", "'open', 'won' or 'lost'", "'failed'"],
    ),
    "the API's address instead of the system's": (
        PLAIN.replace("https://crm.firma.local/", "https://crm.firma.local/api/xml/"),
        ["sources[{i}].base_url", "without /api/xml", "'https://crm.firma.local/api/xml'"],
    ),
    "a page above the cap": (
        NAMED.replace("page_size: 250", "page_size: 5000"),
        ["sources[{i}].page_size", "1000"],
    ),
    "a literal password": (
        PLAIN.replace("${RBS_PASSWORD}", SECRET),
        ["sources[{i}].password", "${ENV_VAR} reference", "literal"],
    ),
    "an unknown timezone": (
        NAMED.replace("Asia/Yekaterinburg", "MSK"),
        ["sources[{i}].timezone", "IANA timezone", "'MSK'"],
    ),
    "an unknown key": (
        PLAIN + "    structure: documents.deals\n",
        ["sources[{i}].structure", "unknown key"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_each_mistake_gets_its_own_clear_message(config_dir: Path, case: str) -> None:
    entry, fragments = BROKEN[case]
    expected = [f.replace("{i}", str(demo_connections(config_dir))) for f in fragments]
    message = error_of(with_sources(config_dir, entry))
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert message.count("\n") <= 3, f"one message, not a dump: {message}"


def test_an_unset_variable_is_named(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RBS_PASSWORD")
    index = demo_connections(config_dir)
    message = error_of(with_sources(config_dir, PLAIN))
    assert f"sources[{index}].password" in message and "RBS_PASSWORD" in message and "unset" in message
