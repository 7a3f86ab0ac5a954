"""RosBiznesSoft CRM (RBS360) over its XML API: deals, their stage history, deal types and
stages, loss reasons, comments, users, companies and their legal entities (with the INN),
landed in ``raw_rosbiznessoft``. The structure and field names are the installation's own,
taken from the connection's ``objects:``/``fields:`` in sources.yaml.

``extract(source, conn, mode, report)`` is what the runner calls; see README.md."""

from extractors.rosbiznessoft.extract import extract
from extractors.rosbiznessoft.structures import ENTITIES

__all__ = ["ENTITIES", "extract"]
