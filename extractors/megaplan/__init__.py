"""Megaplan (API v3): deals, programs and their states, the deals' status history and comments,
employees and contractor companies with their payers' INN, landed in ``raw_megaplan``.

``extract(source, conn, mode, report)`` is what the runner calls; see README.md."""

from extractors.megaplan.extract import extract
from extractors.megaplan.records import ENTITIES

__all__ = ["ENTITIES", "extract"]
