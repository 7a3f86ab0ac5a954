"""File connections: deal exports (CSV in cp1251 and UTF-8, XLSX) and stage history files read
from a folder into the session's warehouse. The files are the stand-in: each test writes its
own from a hand-built world, and the catalogue of bad inputs below is what real exports do."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from dwh.config.models import FileSource
from dwh.warehouse import Target
from extractors.common.run import RunReport
from extractors.common.runner import run_connection
from extractors.file import extract as file_extract
from extractors.file.extract import FileExtraction
from sandbox.files import COLUMNS, HISTORY_COLUMNS, export_rows, history_rows, write_csv, write_xlsx
from sandbox.files.fixtures import SOURCE, build_world
from sandbox.files.render import Exporter, connection_settings, write_exports
from sandbox.rosbiznessoft.fixtures import change_world
from sandbox.world.model import Deal, World

MOSCOW = ZoneInfo("Europe/Moscow")
_names = itertools.count()


@pytest.fixture
def world() -> World:
    return build_world(seed=7, deals=60)


@pytest.fixture
def conn(warehouse: Target) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse.conninfo(), autocommit=True) as c:
        yield c


def source_at(folder: Path, **settings: Any) -> FileSource:
    entry = {**connection_settings(folder), "name": f"file_test_{next(_names)}", **settings}
    return FileSource.model_validate({k: v for k, v in entry.items() if v is not None})


def deals_only(folder: Path, **settings: Any) -> FileSource:
    """A connection reading the deal exports in ``folder`` (no history files)."""
    return source_at(folder, path=str(folder), history_path=None, history_columns={}, **settings)


def run(source: FileSource, conn: psycopg.Connection, mode: str = "incremental") -> RunReport:
    return run_connection(source, conn, mode)  # type: ignore[arg-type]


def stamp(path: Path, at: datetime) -> Path:
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def landed(conn: psycopg.Connection, source: FileSource, entity: str) -> dict[str, Any]:
    rows = conn.execute(
        f"select id, record from raw_file.{entity} where connection_name = %s", (source.name,)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def rejects(conn: psycopg.Connection, source: FileSource) -> list[tuple[str, str | None, str]]:
    return conn.execute(
        "select entity, record_id, reason from ops.rejects where connection_name = %s order by rejected_at, ctid",
        (source.name,),
    ).fetchall()


def local(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(MOSCOW).strftime("%Y-%m-%dT%H:%M:%S")


def expected_values(world: World, deal: Deal) -> dict[str, Any]:
    """What the warehouse must read from a deal's row, from the world itself."""
    exporter = Exporter(world, SOURCE)
    company = exporter.companies.get(deal.company_id or "")
    return {
        "deal_id": deal.id,
        "deal_name": deal.name,
        "pipeline": deal.pipeline_id,
        "stage": deal.stage_id,
        "manager": exporter.manager(deal.manager_key),
        "amount": deal.amount,
        "currency": deal.currency,
        "created_at": local(deal.created_at),
        "closed_at": local(deal.closed_at),
        "status": deal.status,
        "loss_reason": deal.loss_reason_id,
        "comment": "\n".join(c.text for c in sorted(deal.comments, key=lambda c: c.at)) or None,
        "customer_name": company.name if company else None,
        "customer_inn": (company.inn_rendered or None) if company else None,
    }


def assert_deals_match(conn: psycopg.Connection, source: FileSource, world: World, deals: list[Deal]) -> None:
    got = landed(conn, source, "deals")
    assert deals and set(got) >= {d.id for d in deals}
    for deal in deals:
        values = dict(got[deal.id]["values"])
        values["amount"] = Decimal(values["amount"])
        values.pop("status_raw")
        assert values == expected_values(world, deal), deal.id


def typed_rows(world: World) -> tuple[list[str], list[dict[str, Any]]]:
    """The export as a spreadsheet keeps it: amounts as numbers, dates as dates."""
    header, rows = export_rows(world, SOURCE)
    by_id = {d.id: d for d in world.deals}
    for row in rows:
        deal = by_id[row[COLUMNS["deal_id"]]]
        row[COLUMNS["deal_id"]] = int(deal.id)
        row[COLUMNS["amount"]] = float(deal.amount)
        row[COLUMNS["created_at"]] = deal.created_at.astimezone(MOSCOW).replace(tzinfo=None)
        row[COLUMNS["closed_at"]] = (
            deal.closed_at.astimezone(MOSCOW).replace(tzinfo=None) if deal.closed_at else None
        )
    return header, rows


# -- the happy paths -----------------------------------------------------------------------------
def test_a_cp1251_semicolon_export_with_its_history_lands_the_world(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    paths = write_exports(world, SOURCE, tmp_path)
    raw = paths["deals"].read_bytes()
    assert (
        raw.decode("cp1251").startswith("Номер сделки;") and b"\xcd\xee\xec\xe5\xf0" in raw
    )  # "Номер" in cp1251
    source = source_at(tmp_path)
    report = run(source, conn)

    assert report.error is None and not report.rejects, report.rejects
    assert_deals_match(conn, source, world, world.deals)
    assert report.records["deals"] == len(world.deals) == len(landed(conn, source, "deals"))
    history = landed(conn, source, "stage_history")
    assert len(history) == sum(len(d.moves) for d in world.deals)
    deal = next(d for d in world.deals if len(d.moves) >= 3)
    moves = sorted((r["values"]["changed_at"], r["values"]["stage"]) for r in history.values()
                   if r["values"]["deal_id"] == deal.id)  # fmt: skip
    assert moves == [(local(m.at), m.stage_id) for m in sorted(deal.moves, key=lambda m: m.at)]
    snapshots = landed(conn, source, "stage_snapshots")
    assert len(snapshots) == len(world.deals) and all(s["previous"] is None for s in snapshots.values())
    files = landed(conn, source, "files")
    assert {f["name"] for f in files.values()} == {paths["deals"].name, paths["history"].name}
    record = files[f"deals:{paths['deals'].name}"]
    assert record["status"] == "loaded" and record["encoding"] == "cp1251" and record["delimiter"] == ";"
    assert record["rows"] == len(world.deals) and len(record["checksum"]) == 64
    one = next(iter(landed(conn, source, "deals").values()))
    assert (
        one["file"] == paths["deals"].name
        and one["row_number"] >= 2
        and one["checksum"] == record["checksum"]
    )
    assert "Название сделки" in one["columns"]  # every column of the row, mapped or not

    again = run(source, conn)  # each file once
    assert again.error is None and sum(again.records.values()) == 0
    assert again.cursors["files"]["unchanged"] == 2


def test_a_utf8_comma_export_is_read_with_the_separator_found(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    header, rows = export_rows(world, SOURCE)
    write_csv(tmp_path / "deals" / "export.csv", header, rows, encoding="utf-8", delimiter=",")
    source = deals_only(tmp_path / "deals", encoding="auto", delimiter=None)
    report = run(source, conn)
    assert report.error is None and not report.rejects
    assert_deals_match(conn, source, world, world.deals)
    record = next(iter(landed(conn, source, "files").values()))
    assert record["delimiter"] == "," and record["encoding"] == "utf-8"


def test_an_xlsx_funnel_with_typed_cells(world: World, tmp_path: Path, conn: psycopg.Connection) -> None:
    header, rows = typed_rows(world)
    write_xlsx(tmp_path / "funnel" / "Воронка.xlsx", header, rows)
    source = deals_only(tmp_path / "funnel", encoding="cp1251")  # CSV settings do not matter for XLSX
    report = run(source, conn)
    assert report.error is None and not report.rejects
    assert_deals_match(conn, source, world, world.deals)
    one = landed(conn, source, "deals")[world.deals[0].id]
    assert one["columns"][COLUMNS["created_at"]].count("-") == 2  # a date cell, as text


def test_a_folder_with_two_files_and_a_re_export_that_upserts(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    folder = tmp_path / "exports"
    header, rows = export_rows(world, SOURCE)
    first_day = datetime(2025, 4, 4, 9, 0, tzinfo=UTC)
    stamp(write_csv(folder / "part1.csv", header, rows[:30]), first_day)
    stamp(write_csv(folder / "part2.csv", header, rows[30:]), first_day)
    source = deals_only(folder)
    assert run(source, conn).records["deals"] == len(world.deals)

    before = world.now
    changes = change_world(world, hours=24, seed=5)
    moved = [d for d in world.deals if d.id in changes.updated and d.deleted_at is None]
    header, rows = export_rows(world, SOURCE)
    stamp(write_csv(folder / "part3.csv", header, rows), datetime(2025, 4, 5, 9, 0, tzinfo=UTC))
    report = run(source, conn)
    assert report.error is None and report.cursors["files"] == {
        "files": 3, "loaded": 1, "unchanged": 2, "rejected": 0, "changing": 0,
    }  # fmt: skip
    alive = [d for d in world.deals if d.deleted_at is None]
    assert_deals_match(conn, source, world, alive)
    assert set(changes.created) <= set(landed(conn, source, "deals"))
    # the snapshot of a deal whose stage moved records where it was before
    snapshots = landed(conn, source, "stage_snapshots")
    restaged = [d for d in moved if len(d.moves) >= 2 and d.moves[-1].stage_id != d.moves[-2].stage_id
                and d.moves[-1].at > before]  # fmt: skip
    assert restaged
    for deal in restaged:
        mine = sorted(
            (s for s in snapshots.values() if s["deal_id"] == deal.id), key=lambda s: s["observed_at"]
        )
        assert [s["stage"] for s in mine][-2:] == [deal.moves[-2].stage_id, deal.moves[-1].stage_id]
        assert mine[-1]["previous"]["stage"] == deal.moves[-2].stage_id
    gone = next(d for d in world.deals if d.id in changes.deleted)
    assert gone.id in landed(conn, source, "deals")  # an export lists what exists: nothing is deleted


def test_an_older_export_loaded_late_does_not_undo_a_newer_one(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    folder = tmp_path / "exports"
    header, old_rows = export_rows(world, SOURCE)
    deal = next(d for d in world.deals if d.status == "open")
    deal.amount += 5000
    deal.updated_at = world.now
    header, new_rows = export_rows(world, SOURCE)
    stamp(write_csv(folder / "new.csv", header, new_rows), datetime(2025, 4, 5, tzinfo=UTC))
    source = deals_only(folder)
    run(source, conn)
    stamp(write_csv(folder / "old.csv", header, old_rows), datetime(2025, 4, 1, tzinfo=UTC))
    report = run(source, conn)
    assert report.cursors["files"]["loaded"] == 1 and report.records.get("deals", 0) == 0
    assert Decimal(landed(conn, source, "deals")[deal.id]["values"]["amount"]) == deal.amount


# -- the catalogue of bad inputs -------------------------------------------------------------------
def test_wrong_encoding_is_named_and_the_file_loads_once_the_setting_is_fixed(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    header, rows = export_rows(world, SOURCE)
    write_csv(tmp_path / "cp" / "export.csv", header, rows, encoding="cp1251")
    write_csv(tmp_path / "utf" / "export.csv", header, rows, encoding="utf-8")
    # UTF-8 bytes that happen to be valid cp1251: read as cp1251 they are a header of gibberish
    (tmp_path / "mojibake").mkdir()
    (tmp_path / "mojibake" / "export.csv").write_bytes("Номер сделки;Этап\r\n101;Новая\r\n".encode())
    cp_as_utf8 = deals_only(tmp_path / "cp", encoding="utf-8")
    utf8_as_cp = deals_only(tmp_path / "utf", encoding="cp1251")
    gibberish = deals_only(
        tmp_path / "mojibake", encoding="cp1251", columns={"deal_id": "Номер сделки", "stage": "Этап"}
    )
    for source, wanted in (
        (cp_as_utf8, ["export.csv: the file is not utf-8 text (byte 0x", "it reads as cp1251: set encoding: cp1251"]),
        (utf8_as_cp, ["export.csv: the file is not cp1251 text (byte 0x98", "set encoding: utf-8"]),
        (gibberish, ["export.csv: the header (row 1) has no column 'Номер сделки' (columns.deal_id)",
                     "The file is utf-8 text, the connection says cp1251: set encoding: utf-8"]),
    ):  # fmt: skip
        report = run(source, conn)
        assert report.status == "warning" and report.rejects == {"files": 1}
        ((entity, record_id, reason),) = rejects(conn, source)
        assert entity == "files" and record_id == "deals:export.csv"
        for fragment in wanted:
            assert fragment in reason, reason
        assert not landed(conn, source, "deals")
        assert run(source, conn).rejects == {}  # the same file with the same settings: not again
    fixed = cp_as_utf8.model_copy(update={"encoding": "cp1251"})
    assert run(fixed, conn).records["deals"] == len(world.deals)  # the settings changed: tried again
    automatic = utf8_as_cp.model_copy(update={"encoding": "auto"})
    assert run(automatic, conn).records["deals"] == len(world.deals)


def test_a_missing_mapped_column_rejects_the_file_with_the_header_it_has(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    header, rows = export_rows(world, SOURCE)
    write_csv(tmp_path / "x" / "export.csv", header, rows)
    source = deals_only(tmp_path / "x", columns={**COLUMNS, "amount": "Сумма сделки"})
    report = run(source, conn)
    assert report.rejects == {"files": 1}
    ((_, _, reason),) = rejects(conn, source)
    assert "has no column 'Сумма сделки' (columns.amount); it has 'Номер сделки', 'Название сделки'" in reason
    assert not landed(conn, source, "deals")
    assert landed(conn, source, "files")["deals:export.csv"]["status"] == "rejected"


def test_unreadable_cells_reject_their_rows_and_the_rest_load(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    header, rows = export_rows(world, SOURCE)
    rows[2][COLUMNS["created_at"]] = "31.02.2025 10:00"
    rows[5][COLUMNS["amount"]] = "сто тысяч"
    rows[7][COLUMNS["status"]] = "Отложена"
    rows[9][COLUMNS["currency"]] = "тугрики"
    rows[11][COLUMNS["deal_id"]] = ""
    rows[13][COLUMNS["deal_id"]] = rows[4][COLUMNS["deal_id"]]  # a duplicated deal id
    write_csv(tmp_path / "x" / "export.csv", header, rows)
    source = deals_only(tmp_path / "x")
    report = run(source, conn)
    assert report.status == "warning" and report.rejects == {"deals": 6}
    reasons = [r[2] for r in rejects(conn, source)]
    assert reasons == [
        "export.csv, row 4: column 'Дата создания' (created_at): '31.02.2025 10:00' is not a date "
        "(dd.mm.yyyy, dd.mm.yyyy hh:mm[:ss], yyyy-mm-dd[ hh:mm[:ss]] or ISO 8601)",
        "export.csv, row 7: column 'Сумма' (amount): 'сто тысяч' is not an amount (write it like 1 234 567,89 "
        "or 1234567.89)",
        reasons[2],
        "export.csv, row 11: column 'Валюта' (currency): 'тугрики' is not a currency (a three-letter code such "
        "as RUB, USD, EUR, or руб., $, €)",
        "export.csv, row 13: no deal id in column 'Номер сделки'",
        f"export.csv, row 15: deal id {rows[4][COLUMNS['deal_id']]!r} repeats row 6 of this file",
    ]
    assert reasons[2].startswith(
        "export.csv, row 9: column 'Статус' (status): 'Отложена' is not a status word"
    )
    assert "add it under status_values" in reasons[2]
    bad_ids = {rows[i][COLUMNS["deal_id"]] for i in (2, 5, 7, 9)}
    assert (
        set(landed(conn, source, "deals"))
        == {r[COLUMNS["deal_id"]] for r in rows if r[COLUMNS["deal_id"]]} - bad_ids
    )
    first = landed(conn, source, "deals")[rows[4][COLUMNS["deal_id"]]]
    assert first["row_number"] == 6  # the first of the two rows is the one kept

    words = source.model_copy(update={"status_values": {"open": ["Отложена"]}})
    # a loaded file is read again in a full run (after a change of settings)
    assert run(words, conn, mode="full").rejects == {"deals": 5}  # the connection's own word is known now


def test_empty_and_header_only_files(tmp_path: Path, conn: psycopg.Connection) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "empty.csv").write_bytes(b"")
    write_csv(folder / "header_only.csv", list(COLUMNS.values()), [])
    source = deals_only(folder)
    report = run(source, conn)
    assert report.rejects == {"files": 2}
    reasons = sorted(r[2] for r in rejects(conn, source))
    assert reasons == ["empty.csv: the file is empty", "header_only.csv: the file has a header and no rows"]


def test_a_file_that_changes_between_two_loads_is_loaded_again(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    header, rows = export_rows(world, SOURCE)
    path = write_csv(tmp_path / "x" / "funnel.csv", header, rows)
    source = deals_only(tmp_path / "x")
    run(source, conn)
    checksum = landed(conn, source, "files")["deals:funnel.csv"]["checksum"]
    deal_id = rows[0][COLUMNS["deal_id"]]
    rows[0][COLUMNS["stage"]] = "Коммерческое предложение"
    rows[0][COLUMNS["amount"]] = "1\u00a0000\u00a0000,50"
    stamp(write_csv(path, header, rows), datetime(2030, 1, 1, tzinfo=UTC))  # saved again, same name
    report = run(source, conn)
    assert report.records["deals"] == len(rows)  # the rows now come from the new version
    assert landed(conn, source, "files")["deals:funnel.csv"]["checksum"] != checksum
    deal = landed(conn, source, "deals")[deal_id]
    assert deal["values"]["stage"] == "Коммерческое предложение" and deal["values"]["amount"] == "1000000.50"
    assert len(landed(conn, source, "stage_snapshots")) == len(rows) + 1  # one deal seen in another stage


def test_a_messy_export(tmp_path: Path, conn: psycopg.Connection) -> None:
    """A title line above the header, blank lines, mixed date and number styles, a separator
    inside an unquoted value."""
    lines = [
        "Отчёт по сделкам за март;;;;",
        "Номер сделки;Этап;Сумма;Дата создания;Статус",
        "101;Новая;1 234 567,89;01.03.2025;Выиграна",
        "",
        "102;КП;1,234,567.89;2025-03-02 14:05;в  работе",
        "103;КП;-1\u202f000 ₽;2025-03-03T10:00:00+00:00;LOST",
        "104;КП;500;5.3.2025 9:30;Проиграна;лишнее",
    ]
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "march.csv").write_bytes("\r\n".join(lines).encode("utf-8-sig"))  # as Excel saves "CSV UTF-8"
    columns = {"deal_id": "номер  сделки", "stage": "Этап", "amount": "Сумма", "created_at": "Дата создания",
               "status": "Статус"}  # fmt: skip
    source = FileSource(name=f"file_test_{next(_names)}", type="file", path=str(folder), columns=columns)
    report = run(source, conn)
    assert report.rejects == {"deals": 1}
    assert "march.csv, row 7: the row has 6 cells, the header 5" in rejects(conn, source)[0][2]
    got = {k: r["values"] for k, r in landed(conn, source, "deals").items()}
    assert {k: (v["amount"], v["created_at"], v["status"]) for k, v in got.items()} == {
        "101": ("1234567.89", "2025-03-01T00:00:00", "won"),
        "102": ("1234567.89", "2025-03-02T14:05:00", "open"),
        "103": ("-1000", "2025-03-03T13:00:00", "lost"),  # an instant with a zone, in Moscow time
    }
    assert landed(conn, source, "deals")["101"]["row_number"] == 3


def test_a_run_killed_between_two_files_and_run_again(
    world: World, tmp_path: Path, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "exports"
    header, rows = export_rows(world, SOURCE)
    stamp(write_csv(folder / "a.csv", header, rows[:25]), datetime(2025, 4, 1, tzinfo=UTC))
    stamp(write_csv(folder / "b.csv", header, rows[20:]), datetime(2025, 4, 2, tzinfo=UTC))
    source = deals_only(folder)
    original, calls = FileExtraction.land_deals, []

    def dying(self: FileExtraction, *args: Any) -> int:
        calls.append(1)
        written = original(self, *args)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed while landing the second file")
        return written

    monkeypatch.setattr(FileExtraction, "land_deals", dying)
    report = RunReport(connection=source.name, system="file", mode="incremental")
    with pytest.raises(KeyboardInterrupt):
        file_extract(source, conn, "incremental", report)
    assert len(landed(conn, source, "deals")) == 25  # the first file, and nothing of the second
    monkeypatch.undo()
    again = run(source, conn)
    assert again.cursors["files"]["loaded"] == 1 and again.cursors["files"]["unchanged"] == 1
    assert len(landed(conn, source, "deals")) == len(rows)
    assert len(landed(conn, source, "stage_snapshots")) == len(rows)  # the 5 deals of both files: seen once


def test_history_rows_are_checked_and_a_missing_path_is_named(
    world: World, tmp_path: Path, conn: psycopg.Connection
) -> None:
    paths = write_exports(world, SOURCE, tmp_path)
    header, rows = history_rows(world, SOURCE)
    rows[0][HISTORY_COLUMNS["changed_at"]] = ""
    rows.append(dict(rows[1]))
    write_csv(paths["history"], header, rows)
    source = source_at(tmp_path)
    report = run(source, conn)
    assert report.rejects == {"stage_history": 2}
    reasons = [r[2] for r in rejects(conn, source)]
    assert reasons[0].endswith("row 2: no date in column 'Дата изменения'")
    assert "the same change" in reasons[1] and "repeats row 3 of this file" in reasons[1]

    nowhere = deals_only(tmp_path / "no-such-folder")
    failed = run(nowhere, conn)
    assert failed.status == "failed" and failed.error is not None
    assert "path" in failed.error and "no-such-folder" in failed.error and "sources.yaml" in failed.error
