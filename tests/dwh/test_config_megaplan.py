"""A Megaplan connection in sources.yaml: both ways to authenticate load; each mistake gets its own
message naming the file and the key, and never a secret's value."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from dwh.config import ConfigError, load_config
from dwh.config.models import MegaplanSource
from dwh.config.secrets import Secret
from tests.support import PROJECT_ROOT

SECRET = "mp-Secret-That-Must-Not-Leak"
APP_TOKEN: dict[str, Any] = {
    "name": "megaplan_cfg_token",
    "type": "megaplan",
    "base_url": "https://firma.megaplan.ru",
    "auth": {"app_token": "${MEGAPLAN_TOKEN}"},
}
PASSWORD: dict[str, Any] = {
    "name": "megaplan_cfg_box",
    "type": "megaplan",
    "base_url": "http://crm.firma.local/",
    "auth": {"username": "${MEGAPLAN_USER}", "password": "${MEGAPLAN_PASSWORD}"},
    "requests_per_second": 2,
    "custom_fields": ["Причина отказа", "Category1000075CustomFieldKommentariy"],
}


@pytest.fixture
def config_dir(tmp_path: Path, demo_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MEGAPLAN_TOKEN", "MEGAPLAN_USER", "MEGAPLAN_PASSWORD"):
        monkeypatch.setenv(name, SECRET)
    target = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    return target


def with_sources(directory: Path, *entries: dict[str, Any]) -> int:
    """Append ``entries`` to the demo's sources.yaml; returns the index of the first."""
    path = directory / "sources.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    index = len(document["sources"])
    document["sources"].extend(entries)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return index


def error_of(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    message = str(caught.value)
    assert SECRET not in message
    return message


def test_both_ways_to_authenticate_load(config_dir: Path) -> None:
    with_sources(config_dir, APP_TOKEN, PASSWORD)
    config = load_config(config_dir)
    token = config.sources.get("megaplan_cfg_token")
    assert isinstance(token, MegaplanSource)
    assert isinstance(token.auth.app_token, Secret) and token.auth.app_token.get() == SECRET
    assert token.auth.username is None and token.requests_per_second == 5.0 and token.page_size == 100
    box = config.sources.get("megaplan_cfg_box")
    assert isinstance(box, MegaplanSource)
    assert box.base_url == "http://crm.firma.local" and box.requests_per_second == 2
    assert box.auth.username is not None and box.auth.username.env_var == "MEGAPLAN_USER"
    assert box.custom_fields == ["Причина отказа", "Category1000075CustomFieldKommentariy"]
    assert token.custom_fields is None  # every custom field
    assert [s.name for s in config.sources.by_type("megaplan")][-2:] == [
        "megaplan_cfg_token",
        "megaplan_cfg_box",
    ]
    assert SECRET not in repr(config)


def changed(entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(entry)
    out.update(changes)
    return out


CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "both schemes": (
        changed(APP_TOKEN, auth={"app_token": "${MEGAPLAN_TOKEN}", "username": "${MEGAPLAN_USER}"}),
        [
            "sources.yaml",
            "sources[N].auth",
            "either app_token, or username and password",
            "app_token and username",
        ],
    ),
    "password without user": (
        changed(PASSWORD, auth={"password": "${MEGAPLAN_PASSWORD}"}),
        ["sources[N].auth", "both username and password", "found password"],
    ),
    "no auth keys": (changed(APP_TOKEN, auth={}), ["sources[N].auth", "found none of them"]),
    "a literal token": (
        changed(APP_TOKEN, auth={"app_token": SECRET}),
        ["sources[N].auth.app_token", "${ENV_VAR}"],
    ),
    "the api path in base_url": (
        changed(APP_TOKEN, base_url="https://firma.megaplan.ru/api/v3"),
        ["sources[N].base_url", "without /api/v3", "'https://firma.megaplan.ru/api/v3'"],
    ),
    "a pace over the cap": (
        changed(APP_TOKEN, requests_per_second=500),
        ["sources[N].requests_per_second", "50"],
    ),
    "a page over the documented one": (
        changed(APP_TOKEN, page_size=500),
        ["sources[N].page_size", "100"],
    ),
    "a typo": (changed(APP_TOKEN, page_sise=50), ["sources[N].page_sise", "unknown key"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_mistake_has_a_clear_message(config_dir: Path, case: str) -> None:
    entry, expected = CASES[case]
    index = with_sources(config_dir, entry)
    message = error_of(config_dir)
    for part in expected:
        part = part.replace("sources[N]", f"sources[{index}]")
        assert part in message, f"{part!r} not in {message!r}"


def test_an_unset_variable_is_named(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEGAPLAN_PASSWORD")
    index = with_sources(config_dir, PASSWORD)
    message = error_of(config_dir)
    assert f"sources[{index}].auth.password" in message and "MEGAPLAN_PASSWORD" in message
