"""A small world with one file connection (a company's exported funnel), built by hand for the
file connection's tests and the demo's sample export.

It is the RosBiznesSoft fixture world relabelled: a ``file`` source whose pipelines, stages,
reasons, customers and managers are identified by their names (an export shows nothing
else), and no deleted deals (an export lists what exists).
"""

from __future__ import annotations

from sandbox.rosbiznessoft import fixtures as crm
from sandbox.world.model import Source, World

SOURCE = "legacy_excel"


def build_world(seed: int = 7, deals: int = 60, source_name: str = SOURCE) -> World:
    world = crm.build_world(seed, deals, source_name)
    world.sources = [Source(source_name, "file")]
    world.deals = [d for d in world.deals if d.deleted_at is None]
    by_name(world, source_name)
    return world


def by_name(world: World, source_name: str) -> None:
    """Ids become names: what a file shows is all a file connection knows."""
    stage_ids, pipeline_ids, reason_ids, company_ids = {}, {}, {}, {}
    for pipeline in world.pipelines:
        pipeline_ids[pipeline.id] = pipeline.id = pipeline.name
        for stage in pipeline.stages:
            stage_ids[stage.id] = stage.id = stage.name
    for reason in world.loss_reasons:
        reason_ids[reason.id] = reason.id = reason.name
    for company in world.companies:
        company_ids[company.id] = company.id = company.name
    for manager in world.managers:
        if source_name in manager.user_ids:
            manager.user_ids[source_name] = manager.name
    for deal in world.deals:
        deal.pipeline_id, deal.stage_id = pipeline_ids[deal.pipeline_id], stage_ids[deal.stage_id]
        deal.loss_reason_id = reason_ids.get(deal.loss_reason_id or "")
        deal.company_id = company_ids.get(deal.company_id or "")
        for move in deal.moves:
            move.pipeline_id, move.stage_id = pipeline_ids[move.pipeline_id], stage_ids[move.stage_id]
