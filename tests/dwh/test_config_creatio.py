"""A Creatio connection in sources.yaml: cookie login and OAuth client credentials both load;
exactly one of them is required; each mistake gets its own message naming the file and the key,
and never a secret's value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dwh.config import ConfigError, load_config
from dwh.config.models import CreatioSource
from dwh.config.secrets import Secret
from tests.support import PROJECT_ROOT

SECRET = "cr-Secret-That-Must-Not-Leak"
COOKIE = """
  - name: creatio_cookie
    type: creatio
    base_url: https://firma.creatio.com/
    username: ${CREATIO_USER}
    password: ${CREATIO_PASSWORD}
"""
OAUTH = """
  - name: creatio_oauth
    type: creatio
    base_url: https://crm.firma.local
    odata_root: /odata
    client_id: ${CREATIO_CLIENT_ID}
    client_secret: ${CREATIO_CLIENT_SECRET}
    identity_url: https://crm-is.firma.local/
    page_size: 500
    requests_per_second: 2
"""


@pytest.fixture
def config_dir(tmp_path: Path, demo_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CREATIO_USER", "CREATIO_PASSWORD", "CREATIO_CLIENT_ID", "CREATIO_CLIENT_SECRET"):
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
    """How many connections the demo file holds: the index the appended one gets."""
    return len(yaml.safe_load((directory / "sources.yaml").read_text(encoding="utf-8"))["sources"])


def error_of(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    message = str(caught.value)
    assert SECRET not in message
    return message


def test_both_ways_to_authenticate_load(config_dir: Path) -> None:
    config = load_config(with_sources(config_dir, COOKIE, OAUTH))
    cookie = config.sources.get("creatio_cookie")
    assert isinstance(cookie, CreatioSource)
    assert cookie.base_url == "https://firma.creatio.com" and cookie.odata_root == "/0/odata"
    assert isinstance(cookie.password, Secret) and cookie.password.get() == SECRET
    assert cookie.client_id is None and cookie.page_size == 1000 and cookie.requests_per_second == 5.0
    oauth = config.sources.get("creatio_oauth")
    assert isinstance(oauth, CreatioSource)
    assert oauth.username is None and oauth.identity_url == "https://crm-is.firma.local"
    assert oauth.odata_root == "/odata" and oauth.page_size == 500 and oauth.requests_per_second == 2
    assert SECRET not in repr(config)
    assert [s.name for s in config.sources.by_type("creatio")] == [
        "creatio_b2b",
        "creatio_cookie",
        "creatio_oauth",
    ]


BROKEN = {
    "both schemes": (
        COOKIE.replace("    password: ${CREATIO_PASSWORD}\n",
                       "    password: ${CREATIO_PASSWORD}\n    client_id: ${CREATIO_CLIENT_ID}\n"),
        ["sources.yaml", "sources[{i}]", "not both", "found username, password, client_id"],
    ),
    "no scheme": (
        COOKIE.replace("    username: ${CREATIO_USER}\n    password: ${CREATIO_PASSWORD}\n", ""),
        ["sources.yaml", "sources[{i}]", "username and password (cookie login), or client_id"],
    ),
    "a user without a password": (
        COOKIE.replace("    password: ${CREATIO_PASSWORD}\n", ""),
        ["sources.yaml", "sources[{i}]", "username and password together", "found no password"],
    ),
    "a client without its identity service": (
        OAUTH.replace("    identity_url: https://crm-is.firma.local/\n", ""),
        ["sources.yaml", "sources[{i}]", "together for OAuth client credentials", "found no identity_url"],
    ),
    "a literal password": (
        COOKIE.replace("${CREATIO_PASSWORD}", SECRET),
        ["sources.yaml", "sources[{i}].password", "${ENV_VAR} reference", "literal"],
    ),
    "an identity service that is not a URL": (
        OAUTH.replace("https://crm-is.firma.local/", "crm-is.firma.local"),
        ["sources.yaml", "sources[{i}].identity_url", "http:// or https://", "'crm-is.firma.local'"],
    ),
    "an unknown OData root": (
        OAUTH.replace("odata_root: /odata", "odata_root: /0/ServiceModel/EntityDataService.svc"),
        ["sources.yaml", "sources[{i}].odata_root", "'/0/odata'", "'/odata'"],
    ),
    "a page above Creatio's row cap": (
        OAUTH.replace("page_size: 500", "page_size: 50000"),
        ["sources.yaml", "sources[{i}].page_size", "20000"],
    ),
    "an unknown key": (
        COOKIE + "    account_inn_feild: UsrINN\n",
        ["sources.yaml", "sources[{i}].account_inn_feild", "unknown key"],
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


def test_an_unset_variable_is_named(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREATIO_CLIENT_SECRET")
    index = demo_connections(config_dir)
    message = error_of(with_sources(config_dir, OAUTH))
    assert (
        f"sources[{index}].client_secret" in message
        and "CREATIO_CLIENT_SECRET" in message
        and "unset" in message
    )
