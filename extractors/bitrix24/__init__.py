"""Bitrix24 over an incoming webhook: deals with every field (``UF_*`` included), their stage
history, funnels and stages, deal field descriptions, users, timeline comments of lost deals,
companies, contacts and their requisites (where the INN lives), landed in ``raw_bitrix24``.

``extract(source, conn, mode, report)`` is what the runner calls; see README.md."""

from extractors.bitrix24.extract import ENTITIES, extract

__all__ = ["ENTITIES", "extract"]
