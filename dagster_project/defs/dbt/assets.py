"""The dbt project as Dagster assets; its tests surface as asset checks.

The manifest is prepared by ``dbt parse`` at install time (``make install``), never at
import: importing this module reads a file and nothing else.
"""

import os
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

from dagster_project.lib.dbt_translator import WarehouseTranslator
from dagster_project.lib.resources import WarehouseResource
from dwh.paths import dbt_project_dir
from dwh.warehouse import dbt_env

dbt_project = DbtProject(project_dir=dbt_project_dir(), profiles_dir=dbt_project_dir())

if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"{dbt_project.manifest_path} is missing: run `make dbt-parse` (make install does it) to prepare the dbt manifest"
    )


def _dbt_executable() -> str:
    """The dbt installed beside this Python, so an unactivated venv works too."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


@dbt_assets(
    manifest=dbt_project.manifest_path, dagster_dbt_translator=WarehouseTranslator(), name="dbt_models"
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Builds the selected dbt models and runs their tests against the warehouse."""
    os.environ.update(dbt_env(warehouse.target()))
    yield from dbt.cli(["build"], context=context).stream()


defs = dg.Definitions(
    assets=[dbt_models],
    resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())},
)
