"""1C:Enterprise (УТ 11 / КА 2 / ERP) over the standard OData interface: deals, their stage
statistics register, the catalogs they reference, and exchange rates, landed in ``raw_onec``.

``extract(source, conn, mode, report)`` is what the runner calls; see README.md."""

from extractors.onec.extract import extract
from extractors.onec.sets import ENTITIES

__all__ = ["ENTITIES", "extract"]
