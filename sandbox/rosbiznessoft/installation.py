"""What one RosBiznesSoft installation calls things: its structures («Конфигурация» objects),
their fields, and the numeric values of the stage result enumeration.

Every installation names its deal structure and fields its own way; the stand-in reads them
from an ``Installation`` (a mapping of meaning -> name, loadable from YAML), the same meanings
a connection's ``objects:`` and ``fields:`` keys of sources.yaml use. ``DEFAULT`` answers to
a connection that sets neither; ``EXAMPLE_RENAMED`` is an installation whose names differ
everywhere, for proving that nothing is hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# meaning -> the name in an installation that keeps the default names
DEFAULT_OBJECTS: dict[str, str] = {
    "deals": "documents.deals",
    "pipelines": "references.deal_types",
    "stages": "references.deal_stages",
    "loss_reasons": "references.deal_loss_reasons",
    "stage_history": "documents.deal_stage_history",
    "comments": "documents.deal_comments",
    "users": "references.users",
    "companies": "references.companies",
    "company_details": "references.companies_details",
}
DEFAULT_FIELDS: dict[str, str] = {
    "id": "id",
    "visible": "visible",
    "deal_number": "number",
    "deal_name": "name",
    "deal_created": "date",
    "deal_modified": "date_modify",
    "deal_closed": "date_close",
    "deal_pipeline": "type",
    "deal_stage": "status",
    "deal_responsible": "responsible",
    "deal_company": "owner",
    "deal_amount": "sum",
    "deal_currency": "currency",
    "deal_loss_reason": "reason",
    "deal_comment": "description",
    "pipeline_name": "name",
    "stage_name": "name",
    "stage_pipeline": "owner",
    "stage_sort": "sort",
    "stage_result": "result",
    "loss_reason_name": "name",
    "history_deal": "owner",
    "history_stage": "status",
    "history_date": "date",
    "history_user": "responsible",
    "comment_deal": "owner",
    "comment_text": "text",
    "comment_date": "date",
    "comment_author": "author",
    "user_name": "name",
    "user_email": "email",
    "user_active": "active",
    "company_name": "name",
    "company_created": "date",
    "company_modified": "date_modify",
    "company_manager": "manager",
    "details_company": "owner",
    "details_name": "name",
    "details_inn": "inn",
    "details_modified": "date_modify",
}
# structure meaning -> the field meanings its records carry (in this order)
STRUCTURE_FIELDS: dict[str, tuple[str, ...]] = {
    "deals": (
        "id", "visible", "deal_number", "deal_name", "deal_created", "deal_modified", "deal_closed",
        "deal_pipeline", "deal_stage", "deal_responsible", "deal_company", "deal_amount", "deal_currency",
        "deal_loss_reason", "deal_comment",
    ),
    "pipelines": ("id", "visible", "pipeline_name"),
    "stages": ("id", "visible", "stage_name", "stage_pipeline", "stage_sort", "stage_result"),
    "loss_reasons": ("id", "visible", "loss_reason_name"),
    "stage_history": ("id", "history_deal", "history_stage", "history_date", "history_user"),
    "comments": ("id", "visible", "comment_deal", "comment_text", "comment_date", "comment_author"),
    "users": ("id", "visible", "user_name", "user_email", "user_active"),
    "companies": ("id", "visible", "company_name", "company_created", "company_modified", "company_manager"),
    "company_details": ("id", "visible", "details_company", "details_name", "details_inn", "details_modified"),
}  # fmt: skip
# fields every installation has beside the ones above (served, never asked for by meaning)
EXTRA_FIELDS: dict[str, dict[str, str]] = {
    "deals": {"priority": "2"},
    "companies": {"type": "1", "client_type": "1", "property_type": "1"},
}
DEFAULT_STAGE_RESULTS = {"open": "1", "won": "2", "lost": "3"}


@dataclass(frozen=True)
class Installation:
    """Names by meaning; a meaning absent from ``objects`` / ``fields`` keeps its default name,
    and an object named ``""`` does not exist in this installation."""

    objects: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    stage_results: dict[str, str] = field(default_factory=dict)  # open/won/lost -> enumeration value

    def __post_init__(self) -> None:
        unknown = sorted(
            (set(self.objects) - set(DEFAULT_OBJECTS)) | (set(self.fields) - set(DEFAULT_FIELDS))
        )
        if unknown:
            raise ValueError(f"an installation names unknown meanings: {', '.join(unknown)}")
        for meaning, names in STRUCTURE_FIELDS.items():
            taken = [self.field(m) for m in names if self.field(m)] + list(EXTRA_FIELDS.get(meaning, {}))
            twice = sorted({n for n in taken if taken.count(n) > 1})
            if twice:
                raise ValueError(f"structure {meaning}: field name(s) {', '.join(twice)} used twice")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Installation:
        return cls(
            objects=dict(data.get("objects") or {}),
            fields=dict(data.get("fields") or {}),
            stage_results={k: str(v) for k, v in (data.get("stage_results") or {}).items()},
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> Installation:
        return cls.from_mapping(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})

    def structure(self, meaning: str) -> str:
        return self.objects.get(meaning, DEFAULT_OBJECTS[meaning])

    def field(self, meaning: str) -> str:
        return self.fields.get(meaning, DEFAULT_FIELDS[meaning])

    def result_value(self, status: str) -> str:
        return self.stage_results.get(status, DEFAULT_STAGE_RESULTS[status])

    def served_structures(self) -> dict[str, str]:
        """structure name -> meaning, for the structures this installation has."""
        return {self.structure(m): m for m in DEFAULT_OBJECTS if self.structure(m)}

    def connection_settings(self) -> dict[str, Any]:
        """The ``objects`` / ``fields`` / ``stage_results`` keys of a sources.yaml entry that
        reads this installation (only the names that differ from the defaults)."""
        out: dict[str, Any] = {}
        if self.objects:
            out["objects"] = dict(self.objects)
        if self.fields:
            out["fields"] = dict(self.fields)
        if self.stage_results:
            results = {**DEFAULT_STAGE_RESULTS, **self.stage_results}
            out["stage_results"] = {value: status for status, value in results.items()}
        return out


DEFAULT = Installation()
# the same data under the names a customised installation might use
EXAMPLE_RENAMED = Installation(
    objects={
        "deals": "documents.sdelki",
        "pipelines": "references.voronki",
        "stages": "references.etapy_sdelok",
        "loss_reasons": "references.prichiny_otkaza",
        "stage_history": "documents.istoriya_etapov",
        "comments": "documents.kommentarii",
        "users": "references.sotrudniki",
        "companies": "references.kontragenty",
        "company_details": "references.rekvizity",
    },
    fields={
        "deal_name": "nazvanie",
        "deal_created": "data_sozdaniya",
        "deal_modified": "data_izmeneniya",
        "deal_closed": "data_zakrytiya",
        "deal_pipeline": "voronka",
        "deal_stage": "etap",
        "deal_responsible": "otvetstvenny",
        "deal_company": "kontragent",
        "deal_amount": "summa",
        "deal_currency": "valyuta",
        "deal_loss_reason": "prichina_otkaza",
        "stage_result": "itog",
        "history_stage": "etap",
        "history_date": "data",
        "details_inn": "inn_kontragenta",
        "company_modified": "izmeneno",
    },
    stage_results={"open": "10", "won": "20", "lost": "30"},
)
