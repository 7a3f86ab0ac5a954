"""Marts tell dbt-metabase what their columns are: money, links, categories."""

from __future__ import annotations

import json
from pathlib import Path


def test_money_links_and_categories_are_marked(dbt_manifest: Path) -> None:
    manifest = json.loads(dbt_manifest.read_text(encoding="utf-8"))
    marts = [
        n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "marts"
    ]
    assert len(marts) >= 15
    seen: dict[str, set[str]] = {}
    for node in marts:
        for name, column in node["columns"].items():
            kind = column.get("meta", {}).get("metabase.semantic_type")
            seen.setdefault(name, set()).add(kind or "")
    assert seen["crm_url"] == {"type/URL"}
    assert seen["amount_base"] == {"type/Currency"} and seen["lost_amount_base"] == {"type/Currency"}
    assert seen["lost_deals_share"] == {"type/Percentage"} and seen["conversion_rate"] == {"type/Percentage"}
    assert seen["manager_name"] == {"type/Category"} and seen["status"] == {"type/Category"}
