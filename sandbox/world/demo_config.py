"""The demo company's configuration, written for a running sandbox: ``sources.yaml`` (the
stand-ins' URLs, secrets as ``${ENV_VAR}``), ``funnel.yaml`` (canonical funnel, reasons,
rules, people and the per-source mapping derived from the world), ``alerts.yaml`` (a
loopback SMTP server) and ``sandbox.env`` (the secrets' values as ``export NAME='value'``).

The mapping leaves out, on purpose, the stages and reasons the world marks as unknown to it
(``Stage.canonical is None`` for a process stage, ``LossReason.canonical is None``): deals
passing through them are the ``unmapped_stage`` / ``unknown_reason`` defects.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from sandbox.creatio.server import credential_env_names as creatio_env_names
from sandbox.files.render import connection_settings as file_connection_settings
from sandbox.megaplan.render import LOSS_REASON_FIELD_TITLE as MEGAPLAN_LOSS_REASON_FIELD
from sandbox.megaplan.server import credential_env_names as megaplan_env_names
from sandbox.rosbiznessoft.installation import EXAMPLE_RENAMED, Installation
from sandbox.rosbiznessoft.server import credential_env_names as rbs_env_names
from sandbox.world.layout import (
    CANONICAL_NAMES,
    CANONICAL_REASONS,
    CANONICAL_STAGES,
    COMMENT_MIN_CHARS,
    LOST_TOO_FAST_MINUTES,
    STAGE_MAX_DAYS,
    STAGE_REASON_CANONICAL,
    STAGE_TARGETS,
)
from sandbox.world.model import World

AMO_REDIRECT_URI = "https://example.com/amocrm/oauth"
ONEC_PUBLICATION = "/trade/odata/standard.odata"
BITRIX_LOSS_REASON_FIELD = "UF_CRM_LOSS_REASON"
DEFAULT_SMTP_PORT = 18025
# the demo's RosBiznesSoft installation names its structures and fields its own way
RBS_INSTALLATION: Installation = EXAMPLE_RENAMED


def sources_yaml(
    world: World,
    urls: dict[str, str],
    redirect_uri: str = AMO_REDIRECT_URI,
    config_dir: str | Path | None = None,
) -> dict[str, Any]:
    """One connection per source. ``urls`` holds each stand-in's URL and, for a file source,
    the folder its exports are written to (written relative to ``config_dir`` when given)."""
    entries: list[dict[str, Any]] = []
    for source in world.sources:
        if source.name not in urls:
            raise KeyError(f"no URL given for source {source.name!r} (given: {', '.join(urls) or 'none'})")
        url = urls[source.name].rstrip("/")
        env = _env_prefix(source.name)
        if source.system == "file":
            folder = url
            if config_dir is not None and Path(folder).is_absolute():
                folder = os.path.relpath(folder, Path(config_dir).resolve())
            entries.append({"name": source.name, **file_connection_settings(folder, source.timezone)})
            continue
        if source.system == "megaplan":
            token, _, _ = megaplan_env_names(source.name)
            entries.append({"name": source.name, "type": "megaplan", "base_url": url,
                            "auth": {"app_token": f"${{{token}}}"}})  # fmt: skip
            continue
        if source.system == "creatio":
            user, password, _, _ = creatio_env_names(source.name)
            entries.append({"name": source.name, "type": "creatio", "base_url": url,
                            "username": f"${{{user}}}", "password": f"${{{password}}}"})  # fmt: skip
            continue
        if source.system == "rosbiznessoft":
            user, password = rbs_env_names(source.name)
            entries.append({"name": source.name, "type": "rosbiznessoft", "base_url": url,
                            "username": f"${{{user}}}", "password": f"${{{password}}}",
                            "timezone": source.timezone, **RBS_INSTALLATION.connection_settings()})  # fmt: skip
            continue
        if source.system == "amocrm":
            entries.append(
                {
                    "name": source.name,
                    "type": "amocrm",
                    "base_url": url,
                    "auth": {
                        "client_id": f"${{{env}_CLIENT_ID}}",
                        "client_secret": f"${{{env}_CLIENT_SECRET}}",
                        "redirect_uri": redirect_uri,
                        "refresh_token": f"${{{env}_REFRESH_TOKEN}}",
                    },
                }
            )
        elif source.system == "bitrix24":
            entries.append(
                {
                    "name": source.name,
                    "type": "bitrix24",
                    "webhook_url": f"${{{env}_WEBHOOK}}",
                    "portal_url": url,
                }
            )
        else:
            base = url if url.endswith(ONEC_PUBLICATION) else url + ONEC_PUBLICATION
            entries.append(
                {
                    "name": source.name,
                    "type": "onec",
                    "base_url": base,
                    "username": f"${{{_onec_prefix(source.name)}_USER}}",
                    "password": f"${{{_onec_prefix(source.name)}_PASSWORD}}",
                    "timezone": source.timezone,
                }
            )
    return {"sources": entries}


def _env_prefix(source_name: str) -> str:
    return source_name.upper().replace("-", "_")


def _onec_prefix(source_name: str) -> str:
    """The demo's one 1C base reads ONEC_USER / ONEC_PASSWORD; further ones are prefixed."""
    return "ONEC" if source_name == "erp" else _env_prefix(source_name)


def source_mapping(world: World, source_name: str) -> dict[str, Any]:
    """One source's section of funnel.yaml, derived from the world's stages and reasons."""
    system = world.source(source_name).system
    pipelines = [p for p in world.pipelines if p.source_name == source_name]
    codes_by_name: dict[str, set[str]] = {}
    for pipeline in pipelines:
        for stage in pipeline.stages:
            if stage.kind == "process" and stage.canonical is not None:
                codes_by_name.setdefault(stage.name, set()).add(stage.canonical)
    stages: dict[str, str] = {}
    for pipeline in sorted(pipelines, key=lambda p: p.sort):
        for stage in sorted(pipeline.stages, key=lambda s: s.sort):
            if stage.kind != "process" or stage.canonical is None:
                continue
            ambiguous = len(codes_by_name[stage.name]) > 1
            stages[f"{pipeline.name} / {stage.name}" if ambiguous else stage.name] = stage.canonical
    reasons: dict[str, str] = {}
    for reason in world.loss_reasons:
        if reason.source_name == source_name and reason.canonical is not None:
            reasons[reason.name] = reason.canonical
    section: dict[str, Any] = {}
    refusal = next(
        (s.name for p in pipelines for s in p.stages if s.kind == "conditional_refusal"),
        None,
    )
    if system in ("bitrix24", "megaplan"):
        # Bitrix24: the UF field and the tender stages naming reasons; Megaplan: the enumeration
        # custom field and the negative states naming reasons
        section["loss_reason_field"] = (
            BITRIX_LOSS_REASON_FIELD if system == "bitrix24" else MEGAPLAN_LOSS_REASON_FIELD
        )
        section["loss_reason_stages"] = True
        for pipeline in pipelines:
            for stage in pipeline.stages:
                code = STAGE_REASON_CANONICAL.get(stage.reason_name or "")
                if stage.reason_name and code is not None:
                    reasons[stage.reason_name] = code
    section["stages"] = stages
    if refusal is not None:
        section["conditional_refusal_stage"] = refusal
    section["loss_reasons"] = reasons
    return section


def funnel_yaml(world: World) -> dict[str, Any]:
    stages: list[dict[str, Any]] = []
    for code in CANONICAL_STAGES:
        entry: dict[str, Any] = {"code": code, "name": CANONICAL_NAMES[code]}
        if code in STAGE_TARGETS:
            entry["target_conversion"] = STAGE_TARGETS[code]
            entry["max_days"] = STAGE_MAX_DAYS[code]
        stages.append(entry)
    people = []
    files = {s.name for s in world.sources if s.system == "file"}
    for manager in world.managers:
        # the same person is found by e-mail (case aside) unless one system spells it
        # differently; an export names the manager and shows no e-mail
        spelt = {e.lower() for e in manager.emails_by_source.values()}
        if spelt - {manager.email.lower()} or files & set(manager.user_ids):
            people.append(
                {
                    "name": manager.name,
                    "email": manager.email,
                    "ids": [f"{source}:{uid}" for source, uid in manager.user_ids.items()],
                }
            )
    return {
        "timezone": "Europe/Moscow",
        "base_currency": "RUB",
        "stages": stages,
        "loss_reasons": [dict(r) for r in CANONICAL_REASONS],
        "rules": {"lost_too_fast_minutes": LOST_TOO_FAST_MINUTES, "comment_min_chars": COMMENT_MIN_CHARS},
        "people": people,
        "sources": {s.name: source_mapping(world, s.name) for s in world.sources},
    }


def alerts_yaml(smtp_port: int = DEFAULT_SMTP_PORT, telegram_api_url: str | None = None) -> dict[str, Any]:
    channels: dict[str, Any] = {
        "email": {
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "security": "none",
            "sender": "dwh@example.ru",
        }
    }
    head: dict[str, Any] = {"email": ["rop@example.ru"]}
    if telegram_api_url:
        channels["telegram"] = {"bot_token": "${TELEGRAM_BOT_TOKEN}", "api_base_url": telegram_api_url}
        head["telegram_chat_ids"] = ["-1001234567890"]
    head["receives"] = ["lost_deal_issues_digest", "weekly_funnel_report"]
    return {
        "channels": channels,
        "recipients": {
            "head_of_sales": head,
            "data_engineers": {"email": ["data@example.ru"], "receives": ["run_failures", "failed_checks"]},
        },
        "schedule": {"lost_deal_issues_digest": "0 9 * * 1-5", "weekly_funnel_report": "0 9 * * 1"},
    }


def env_file_text(env: dict[str, str]) -> str:
    lines = ["# The sandbox stand-ins' credentials: `source` this file before running the pipeline."]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]
    return "\n".join(lines) + "\n"


def write_demo_config(
    world: World,
    urls: dict[str, str],
    config_dir: str | Path,
    env: dict[str, str] | None = None,
    *,
    env_path: str | Path | None = None,
    redirect_uri: str = AMO_REDIRECT_URI,
    smtp_port: int = DEFAULT_SMTP_PORT,
    telegram_api_url: str | None = None,
) -> list[Path]:
    """Write sources.yaml, funnel.yaml and alerts.yaml into ``config_dir`` (and, given the
    stand-ins' credentials ``env``, ``sandbox.env`` there or at ``env_path``); return the paths."""
    out = Path(config_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = "# Written by `python -m sandbox serve` for the sandbox world (seed {seed}, {size} deals).\n"
    written = []
    for name, payload in (
        ("sources.yaml", sources_yaml(world, urls, redirect_uri, out)),
        ("funnel.yaml", funnel_yaml(world)),
        ("alerts.yaml", alerts_yaml(smtp_port, telegram_api_url)),
    ):
        path = out / name
        text = yaml.safe_dump(payload, allow_unicode=True, sort_keys=False, width=110)
        path.write_text(header.format(seed=world.seed, size=world.size) + text, encoding="utf-8")
        written.append(path)
    if env is not None:
        path = Path(env_path) if env_path is not None else out / "sandbox.env"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env_file_text(env), encoding="utf-8")
        path.chmod(0o600)
        written.append(path)
    return written
