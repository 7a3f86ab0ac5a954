"""Finding export files and reading them into a header and rows of text.

CSV: the bytes are decoded as the connection says (``auto``: UTF-8 when the bytes are valid
UTF-8, else cp1251; a UTF-8 byte order mark always means UTF-8), the separator is the
connection's or the one of ``;``, ``,`` and tab that finds the most mapped columns in the
header. XLSX: the first sheet (or the connection's ``sheet``), cells turned into text (dates
as ``yyyy-mm-dd hh:mm:ss``, numbers without a trailing ``.0``).

The header is the first of the first ``HEADER_SEARCH_ROWS`` rows holding the deal id's
column (exports often start with a title line); a row is numbered as a spreadsheet shows it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
HEADER_SEARCH_ROWS = 10
DELIMITERS = (";", ",", "\t")
UTF8_BOM = b"\xef\xbb\xbf"


class FileProblem(ValueError):
    """The whole file cannot be read as an export: the message says why and what to change."""


@dataclass
class Table:
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, cells)
    header_row: int
    encoding: str | None = None
    delimiter: str | None = None
    notes: list[str] = field(default_factory=list)


def normal(name: str) -> str:
    """A column name compared loosely: case, spaces and no-break spaces do not matter."""
    return " ".join(name.replace("\ufeff", "").replace("\u00a0", " ").split()).casefold()


def export_files(path: Path) -> list[Path]:
    """The export files at ``path`` (a folder: its CSV/XLSX files, not its subfolders), oldest first."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(path)
    files = [
        p
        for p in path.iterdir()
        if p.is_file()
        and p.suffix.lower() in CSV_SUFFIXES | XLSX_SUFFIXES
        and not p.name.startswith((".", "~$"))
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def read_table(name: str, data: bytes, *, encoding: str, delimiter: str | None, sheet: str | None,
               key_column: str, wanted: list[str]) -> Table:  # fmt: skip
    """The file's header and rows; ``FileProblem`` when it cannot be read."""
    if not data.strip():
        raise FileProblem("the file is empty")
    if Path(name).suffix.lower() in XLSX_SUFFIXES:
        return _xlsx(data, sheet, key_column)
    return _csv(data, encoding, delimiter, key_column, wanted)


# -- CSV ---------------------------------------------------------------------------------------
def decode(data: bytes, encoding: str) -> tuple[str, str]:
    """(text, the encoding used)."""
    if data.startswith(UTF8_BOM):
        try:
            return data[len(UTF8_BOM) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise FileProblem(
                f"the file starts with a UTF-8 byte order mark but is not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
    if encoding == "auto":
        for codec in ("utf-8", "cp1251"):
            if _decodes(data, codec):
                return data.decode(codec), codec
        raise FileProblem("the file is neither UTF-8 nor cp1251 text: save the export in one of them")
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    try:
        return data.decode(codec), codec
    except UnicodeDecodeError as exc:
        other = "cp1251" if codec == "utf-8" else "utf-8"
        hint = (
            f"; it reads as {other}: set encoding: {other} (or auto) in sources.yaml"
            if _decodes(data, other)
            else ""
        )
        raise FileProblem(
            f"the file is not {codec} text (byte 0x{data[exc.start]:02x} at position {exc.start} is invalid){hint}"
        ) from None


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _lines(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def sniff(text: str, wanted: list[str]) -> str:
    """The separator that finds the most mapped columns in the first lines; ties: the most frequent."""
    head = "\n".join(text.splitlines()[:HEADER_SEARCH_ROWS])
    wanted_names = {normal(w) for w in wanted}

    def score(d: str) -> tuple[int, int]:
        rows = _lines(head, d)
        found = max((len({normal(c) for c in row} & wanted_names) for row in rows), default=0)
        return found, head.count(d)

    return max(DELIMITERS, key=score)


def _csv(data: bytes, encoding: str, delimiter: str | None, key_column: str, wanted: list[str]) -> Table:
    text, used = decode(data, encoding)
    chosen = delimiter or sniff(text, wanted)
    try:
        records = _lines(text, chosen)
    except csv.Error as exc:
        raise FileProblem(f"not readable as CSV with the separator {chosen!r}: {exc}") from None
    table = _with_header(records, key_column)
    table.encoding, table.delimiter = used, chosen
    if encoding not in ("auto", used) and not (encoding == "utf-8" and used == "utf-8-sig"):
        table.notes.append(f"read as {used} (a byte order mark), not {encoding}")
    return table


# -- XLSX --------------------------------------------------------------------------------------
def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _xlsx(data: bytes, sheet: str | None, key_column: str) -> Table:
    from openpyxl import load_workbook  # only a connection with XLSX files needs it

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FileProblem(f"not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise FileProblem(
                f"the workbook has no sheet {sheet!r}; it has {', '.join(map(repr, workbook.sheetnames))}"
            )
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        records = [[cell_text(v) for v in row] for row in worksheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    table = _with_header(records, key_column)
    table.notes.append(f"sheet {worksheet.title!r}")
    return table


# -- the header ---------------------------------------------------------------------------------
def _with_header(records: list[list[str]], key_column: str) -> Table:
    key = normal(key_column)
    start = next(
        (i for i, r in enumerate(records[:HEADER_SEARCH_ROWS]) if key in {normal(c) for c in r}), None
    )
    if start is None:
        start = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if start is None:
        raise FileProblem("the file has no rows")
    header = [c.replace("\ufeff", "").strip() for c in records[start]]
    while header and not header[-1]:
        header.pop()
    rows = [(start + 2 + i, r) for i, r in enumerate(records[start + 1 :])]
    return Table(header=header, rows=rows, header_row=start + 1)
