"""Deal exports as files (CSV in cp1251 or UTF-8, XLSX): what a ``file`` connection reads.

There is no server: the "stand-in" of a file connection is the files themselves, written
from the world by ``sandbox.files.render``."""

from sandbox.files.render import (
    COLUMNS,
    HISTORY_COLUMNS,
    connection_settings,
    export_rows,
    history_rows,
    write_csv,
    write_exports,
    write_xlsx,
)

__all__ = [
    "COLUMNS",
    "HISTORY_COLUMNS",
    "connection_settings",
    "export_rows",
    "history_rows",
    "write_csv",
    "write_exports",
    "write_xlsx",
]
