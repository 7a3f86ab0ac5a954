"""CSV and XLSX exports of deals (from any CRM, or a company's spreadsheet funnel), and their
stage history files when there are any, loaded from a folder or one file into ``raw_file``.
The columns are mapped by meaning in the connection's ``columns:`` (sources.yaml).

``extract(source, conn, mode, report)`` is what the runner calls; see README.md."""

from extractors.file.extract import ENTITIES, extract

__all__ = ["ENTITIES", "extract"]
