"""amoCRM (Kommo) API v4: leads, deleted leads, pipelines, loss reasons, status-change events,
users, common notes, contacts and companies, landed in ``raw_amocrm``. See README.md."""

from extractors.amocrm.extract import ENTITIES, extract

__all__ = ["ENTITIES", "extract"]
