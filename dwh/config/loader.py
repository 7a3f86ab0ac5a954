"""Read and validate the configuration files. Every failure is one ``ConfigError`` naming
the file, the key path, what was expected and what was found, and never a secret's value."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from dwh.config.models import AlertsConfig, Config, FunnelConfig, SourcesConfig
from dwh.paths import config_dir

M = TypeVar("M", bound=BaseModel)

# keys whose values are never printed, whatever went wrong with them
SECRET_KEYS = {"password", "token", "secret", "webhook", "refresh", "key", "credential", "username"}


class ConfigError(ValueError):
    """A configuration file is wrong. ``str()`` is the message for the user."""

    def __init__(self, file: Path, problems: list[str]):
        self.file = file
        self.problems = problems
        super().__init__(f"{file}: " + ("\n  ".join(problems) if len(problems) > 1 else problems[0]))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith(("function-", "union[")):
            continue
        elif (
            part in ("amocrm", "bitrix24", "onec", "megaplan", "creatio", "rosbiznessoft", "file")
            and out.startswith("sources[")
            and out.count(".") == 0
        ):
            continue  # the discriminator's tag, not a key the user wrote
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _is_secret(loc: tuple[Any, ...]) -> bool:
    return any(isinstance(p, str) and any(k in p.lower() for k in SECRET_KEYS) for p in loc)


def _found(error: dict[str, Any]) -> str:
    value = error.get("input")
    if _is_secret(error["loc"]):
        return f"a {type(value).__name__}"
    if isinstance(value, dict):
        return "a mapping with keys " + ", ".join(map(str, value)) if value else "an empty mapping"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(error: dict[str, Any]) -> str:
    path = _path(error["loc"])
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return f"{path}: expected this key, found it missing"
    if kind == "extra_forbidden":
        return f"{path}: expected no such key (unknown key; check its spelling)"
    if kind == "union_tag_invalid":
        tags = error.get("ctx", {}).get("expected_tags", "")
        return f"{path}.type: expected one of {tags}, found {error.get('ctx', {}).get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"{path}: expected a 'type' key, found none"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        if text.startswith("sources.") or text.startswith("recipients.") or text.startswith("schedule."):
            return text if path == "(top level)" else f"{path}: expected {text}"
        if ", found " in text:
            return f"{path}: expected {text}"
        return f"{path}: {text}"
    expected = msg.removeprefix("Input should be ").removeprefix("input should be ")
    return f"{path}: expected {expected[0].lower() + expected[1:]}, found {_found(error)}"


def _read_yaml(file: Path) -> Any:
    if not file.exists():
        raise ConfigError(file, ["expected this file, found it missing"])
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            file, [f"expected valid YAML, found a syntax error at {where}: {problem}"]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(file, ["expected UTF-8 text, found undecodable bytes"]) from None
    if not isinstance(data, dict):
        raise ConfigError(file, [f"expected a mapping at the top level, found {type(data).__name__}"])
    return data


def _validate(model: type[M], file: Path) -> M:
    data = _read_yaml(file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, [_message(e) for e in exc.errors()]) from None


def load_sources(directory: Path | None = None) -> SourcesConfig:
    return _validate(SourcesConfig, (directory or config_dir()) / "sources.yaml")


def load_funnel(directory: Path | None = None) -> FunnelConfig:
    return _validate(FunnelConfig, (directory or config_dir()) / "funnel.yaml")


def load_alerts(directory: Path | None = None) -> AlertsConfig:
    return _validate(AlertsConfig, (directory or config_dir()) / "alerts.yaml")


def load_config(directory: Path | None = None) -> Config:
    """All three files, checked against each other."""
    directory = directory or config_dir()
    sources = load_sources(directory)
    funnel = load_funnel(directory)
    alerts = load_alerts(directory)
    names = {s.name for s in sources.sources}
    unknown = sorted(set(funnel.sources) - names)
    if unknown:
        raise ConfigError(
            directory / "funnel.yaml",
            [
                f"sources.{u}: expected a connection named in sources.yaml ({', '.join(sorted(names))}), "
                f"found {u!r}"
                for u in unknown
            ],
        )
    for person in funnel.people:
        for pid in person.ids:
            if pid.split(":", 1)[0] not in names:
                raise ConfigError(
                    directory / "funnel.yaml",
                    [
                        f"people[{person.name}].ids: expected <connection>:<id> with a connection of sources.yaml, "
                        f"found {pid!r}"
                    ],
                )
    return Config(sources=sources, funnel=funnel, alerts=alerts)
