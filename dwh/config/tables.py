"""The company's configuration as tables in schema ``config``, which dbt reads as sources.

``write_config_tables`` replaces every table in one transaction: a reader sees the old
configuration or the new one, never half of each.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dwh.config.models import Config

TABLES: dict[str, str] = {
    "settings": """
        timezone text not null, base_currency text not null, unmapped_reason text not null,
        lost_too_fast_minutes numeric not null, comment_min_chars integer not null""",
    "stages": """
        stage_code text primary key, stage_name text not null, stage_position integer not null,
        target_conversion numeric, max_days numeric, is_last boolean not null""",
    "loss_reasons": """
        reason_code text primary key, reason_name text not null, reason_position integer not null,
        reactivate_after_days integer, needs_review boolean not null""",
    "sources": """
        source_name text primary key, source_type text not null, crm_base_url text,
        source_timezone text, conditional_refusal_stage text, loss_reason_field text,
        loss_reason_stages boolean not null, comment_field text""",
    "stage_mappings": """
        source_name text not null, pipeline_name text, source_stage_name text not null,
        stage_code text not null""",
    "reason_mappings": """
        source_name text not null, source_reason text not null, reason_code text not null,
        primary key (source_name, source_reason)""",
    "people": """
        person_name text not null, email text, source_name text, user_id text""",
}

PIPELINE_SEPARATOR = " / "


def _crm_base_url(source: Any) -> str | None:
    for attr in ("portal_url", "web_client_url", "base_url"):
        value = getattr(source, attr, None)
        if value:
            return value
    return None


def rows(config: Config) -> dict[str, list[tuple]]:
    funnel = config.funnel
    out: dict[str, list[tuple]] = {name: [] for name in TABLES}
    out["settings"].append(
        (funnel.timezone, funnel.base_currency, funnel.unmapped_reason,
         funnel.rules.lost_too_fast_minutes, funnel.rules.comment_min_chars)
    )  # fmt: skip
    last = len(funnel.stages) - 1
    for i, st in enumerate(funnel.stages):
        out["stages"].append((st.code, st.name, i + 1, st.target_conversion, st.max_days, i == last))
    for i, r in enumerate(funnel.loss_reasons):
        out["loss_reasons"].append((r.code, r.name, i + 1, r.reactivate_after_days, r.needs_review))
    for src in config.sources.sources:
        m = funnel.sources.get(src.name)
        out["sources"].append(
            (src.name, src.type, _crm_base_url(src), getattr(src, "timezone", None),
             m.conditional_refusal_stage if m else None, m.loss_reason_field if m else None,
             bool(m and m.loss_reason_stages), m.comment_field if m else None)
        )  # fmt: skip
    for source_name, m in funnel.sources.items():
        for key, code in m.stages.items():
            pipeline, _, stage = key.rpartition(PIPELINE_SEPARATOR)
            out["stage_mappings"].append((source_name, pipeline.strip() or None, stage.strip(), code))
        for reason, code in m.loss_reasons.items():
            out["reason_mappings"].append((source_name, reason.strip(), code))
    for person in funnel.people:
        if not person.ids:
            out["people"].append((person.name, person.email and person.email.lower(), None, None))
        for pid in person.ids:
            source_name, _, user_id = pid.partition(":")
            out["people"].append((person.name, person.email and person.email.lower(), source_name, user_id))
    return out


def write_config_tables(conn: psycopg.Connection, config: Config) -> dict[str, int]:
    """Replace the ``config.*`` tables atomically; return the row count of each."""
    data = rows(config)
    with conn.transaction():
        for table, columns in TABLES.items():
            conn.execute(f"create table if not exists config.{table} ({columns})")
            conn.execute(f"truncate config.{table}")
            if data[table]:
                placeholders = ", ".join(["%s"] * len(data[table][0]))
                with conn.cursor() as cur:
                    cur.executemany(f"insert into config.{table} values ({placeholders})", data[table])
    return {table: len(r) for table, r in data.items()}
