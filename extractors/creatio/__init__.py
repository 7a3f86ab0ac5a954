"""Creatio (8.x) over its OData 4 web service: opportunities, their stage history, the stage
and close reason lookups, the owners (contacts and system users) and the accounts, landed in
``raw_creatio``.

``extract(source, conn, mode, report)`` is what the runner calls; see README.md."""

from extractors.creatio.extract import extract
from extractors.creatio.sets import ENTITIES

__all__ = ["ENTITIES", "extract"]
