"""The whole pipeline on a sandbox world, in-process: the stand-ins on loopback and the file
source's exports in a folder, the demo configuration written for them, and every asset but the deliveries materialized through
Dagster against the session's warehouse (reset first: each world is a new company)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg

from dwh.bootstrap import bootstrap
from dwh.warehouse import Target
from sandbox.serve import Sandbox, start_sandbox
from sandbox.world.demo_config import write_demo_config
from sandbox.world.generate import generate
from sandbox.world.model import World
from sandbox.world.truth import Truth, load_truth, write_truth

RESET_SCHEMAS = (
    "staging", "intermediate", "marts", "raw_amocrm", "raw_bitrix24", "raw_onec", "raw_megaplan", "raw_creatio",
    "raw_rosbiznessoft", "raw_file", "config",
)  # fmt: skip


@dataclass
class Run:
    world: World
    sandbox: Sandbox
    truth: Truth
    config_dir: Path
    result: dg.ExecuteInProcessResult | None = None


def reset(warehouse: Target) -> None:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as conn:
        for schema in RESET_SCHEMAS:
            conn.execute(f"drop schema if exists {schema} cascade")
        for table in ("extract_cursors", "extract_runs", "rejects", "oauth_tokens"):
            conn.execute(f"truncate ops.{table}")
    bootstrap(warehouse)


@contextmanager
def sandbox_world(seed: int, deals: int, folder: Path) -> Iterator[Run]:
    world = generate(seed, deals)
    sandbox = start_sandbox(world, exports_dir=folder / "exports")
    try:
        config_dir = folder / "config"
        write_demo_config(world, sandbox.urls, config_dir, sandbox.env)
        truth_dir = folder / "truth"
        write_truth(world, truth_dir)
        saved = {k: os.environ.get(k) for k in [*sandbox.env, "DWH_CONFIG_DIR"]}
        os.environ.update(sandbox.env)
        os.environ["DWH_CONFIG_DIR"] = str(config_dir)
        try:
            yield Run(world, sandbox, load_truth(truth_dir), config_dir)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    finally:
        sandbox.stop()


def materialize_pipeline(run: Run, mode: str = "incremental") -> dg.ExecuteInProcessResult:
    from dagster_project.definitions import defs
    from dagster_project.defs.extract.schedules import PIPELINE, mode_config

    result = dg.materialize(
        assets=list(defs.assets),  # type: ignore[arg-type]
        resources=defs.resources,
        selection=PIPELINE,
        run_config=mode_config(mode),
        raise_on_error=False,
    )
    run.result = result
    return result


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    messages = [str(e.event_specific_data.error.message)[:2000] for e in result.all_events  # type: ignore[union-attr]
                if e.is_step_failure]  # fmt: skip
    messages += [f"check {c.asset_key.to_user_string()}:{c.check_name} failed: {c.description}"
                 for c in result.get_asset_check_evaluations()
                 if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]  # fmt: skip
    return messages
