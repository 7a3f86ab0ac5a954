"""Configuration: the demo files load, and each kind of mistake gets its own clear message
naming the file and the key, without ever printing a secret's value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dwh.config import ConfigError, load_config
from dwh.config.secrets import Secret
from tests.support import PROJECT_ROOT

SECRET_VALUE = "s3cr3t-Value-That-Must-Not-Leak"


@pytest.fixture
def config_dir(tmp_path: Path, demo_env: dict[str, str]) -> Path:
    target = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    return target


def edit(directory: Path, file: str, old: str, new: str) -> None:
    path = directory / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def error_of(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    return str(caught.value)


def test_demo_configuration_loads(config_dir: Path) -> None:
    config = load_config(config_dir)
    names = [s.name for s in config.sources.sources]
    assert names == [
        "amo_retail",
        "b24_wholesale",
        "erp",
        "megaplan_main",
        "creatio_b2b",
        "rbs",
        "legacy_excel",
    ]
    amo = config.sources.get("amo_retail")
    assert isinstance(amo.auth.refresh_token, Secret)
    assert amo.auth.refresh_token.get() == "test-refresh-token"
    assert "test-refresh-token" not in repr(config)  # secrets never show in a repr
    assert [s.code for s in config.funnel.stages][-1] == "paid"
    assert config.alerts.recipients["head_of_sales"].receives == [
        "lost_deal_issues_digest",
        "weekly_funnel_report",
    ]


BROKEN = {
    "unknown source type": (
        "sources.yaml", "type: bitrix24", "type: bitrix42",
        ["sources.yaml", "sources[1].type", "amocrm", "'bitrix42'"],
    ),
    "duplicate name": (
        "sources.yaml", "name: erp", "name: amo_retail",
        ["sources.yaml", "unique connection names", "'amo_retail' twice"],
    ),
    "missing key": (
        "sources.yaml", "  portal_url: http://127.0.0.1:18082\n", "",
        ["sources.yaml", "sources[1].portal_url", "missing"],
    ),
    "wrong type": (
        "funnel.yaml", "lost_too_fast_minutes: 30", "lost_too_fast_minutes: half an hour",
        ["funnel.yaml", "rules.lost_too_fast_minutes", "a valid number", "'half an hour'"],
    ),
    "literal secret": (
        "sources.yaml", "password: ${ONEC_PASSWORD}", f"password: {SECRET_VALUE}",
        ["sources.yaml", "sources[2].password", "${ENV_VAR} reference", "literal"],
    ),
    "unknown canonical stage in a mapping": (
        "funnel.yaml", "      Презентация: proposal", "      Презентация: demo",
        ["funnel.yaml", "sources.erp.stages['Презентация']", "new, contact, proposal, contract, paid", "'demo'"],
    ),
    "unset environment variable": (
        "sources.yaml", "username: ${ONEC_USER}", "username: ${ONEC_USER_NOT_SET_ANYWHERE}",
        ["sources.yaml", "sources[2].username", "ONEC_USER_NOT_SET_ANYWHERE", "unset"],
    ),
    "malformed YAML": (
        "alerts.yaml", "recipients:\n", "recipients: [\n",
        ["alerts.yaml", "valid YAML", "line"],
    ),
    "unknown key": (
        "funnel.yaml", "base_currency: RUB", "base_curency: RUB",
        ["funnel.yaml", "base_curency", "unknown key"],
    ),
    "mapping for a connection that does not exist": (
        "funnel.yaml", "  erp:\n", "  erp_old:\n",
        ["funnel.yaml", "sources.erp_old", "a connection named in sources.yaml"],
    ),
    "recipient on an unconfigured channel": (
        "alerts.yaml", "  telegram:\n    bot_token: ${TELEGRAM_BOT_TOKEN}\n    api_base_url: http://127.0.0.1:18026\n", "",
        ["alerts.yaml", "recipients.head_of_sales.telegram_chat_ids", "channels.telegram"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_broken_file_gives_its_own_clear_message(config_dir: Path, case: str) -> None:
    file, old, new, expected = BROKEN[case]
    edit(config_dir, file, old, new)
    message = error_of(config_dir)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"
    assert SECRET_VALUE not in message
    assert "test-password" not in message and "test-refresh-token" not in message
    assert message.count("\n") <= 3, f"one message, not a dump: {message}"


def test_every_broken_case_has_a_distinct_message(config_dir: Path, tmp_path: Path) -> None:
    messages = set()
    for i, (file, old, new, _) in enumerate(BROKEN.values()):
        case_dir = tmp_path / f"case{i}"
        shutil.copytree(config_dir, case_dir)
        edit(case_dir, file, old, new)
        messages.add(error_of(case_dir).split(":", 1)[1])
    assert len(messages) == len(BROKEN)


def test_missing_file_is_named(config_dir: Path) -> None:
    (config_dir / "alerts.yaml").unlink()
    assert "alerts.yaml: expected this file, found it missing" in error_of(config_dir)


def test_secret_of_wrong_type_does_not_echo_its_value(config_dir: Path) -> None:
    edit(config_dir, "sources.yaml", "password: ${ONEC_PASSWORD}", "password: 987654321")
    message = error_of(config_dir)
    assert "987654321" not in message
    assert "sources[2].password" in message
