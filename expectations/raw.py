"""Suites for the landed raw tables (``raw_<system>.<entity>``): does each record look like
what its API serves?

Every raw table is checked for: its key columns set and ``(connection_name, id)`` unique; the
id column equal to the id the record itself holds (``id``, ``ID``, ``Id``, ``Ref_Key``, the
values a register or history row is keyed by); the keys every live record carries; the JSON
types of the values the models read; timestamps that parse and are plausible (not before 2000,
not more than a day ahead); amounts that parse and are plausible (not negative, below
``AMOUNT_CAP``). A key may be a path into the record: ``price.value`` is ``record -> 'price' ->
'value'`` (Megaplan's Money and DateTime objects, RosBiznesSoft's and the export files' ``values``).

A raw shape problem is a warning: the data may still be usable, and an engineer should look.
Only the fields checked are read from the ``record`` jsonb, so no contact's phone or e-mail
ever reaches a sample.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from psycopg import sql

from expectations.runner import MAX_ROWS, Suite

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations import Expectation

AMOUNT_CAP = 10_000_000_000  # a deal above ten billion in its currency is a typo or a unit mix-up
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_SLACK = dt.timedelta(days=1)  # also absorbs 1C's zone-less local times
ONEC_EMPTY_DATE = "0001-01-01T00:00:00"  # how 1C writes "no date"
RBS_EMPTY_DATES = ("0000-00-00", "0000-00-00 00:00:00")  # MySQL's zero date: RosBiznesSoft's "no date"

# amoCRM Unix seconds; ISO 8601 with an offset; 1C zone-less local ``yyyy-mm-ddThh:mm:ss``;
# the export files' zone-less local ``yyyy-mm-ddThh:mm:ss``; RosBiznesSoft's zone-less
# ``yyyy-mm-dd hh:mm[:ss]`` or ``yyyy-mm-dd``
StampStyle = Literal["unix", "iso", "onec", "local", "rbs"]
MoneyStyle = Literal["number", "numeric_string"]  # a JSON number, or text such as Bitrix24's "19999.99"
LOCAL_FORMATS: dict[StampStyle, tuple[str, ...]] = {
    "onec": ("%Y-%m-%dT%H:%M:%S",),
    "local": ("%Y-%m-%dT%H:%M:%S",),
    "rbs": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"),
}
EMPTY_DATES: dict[StampStyle, tuple[str, ...]] = {"onec": (ONEC_EMPTY_DATE,), "rbs": RBS_EMPTY_DATES}


@dataclass(frozen=True)
class Stamp:
    key: str
    style: StampStyle
    required: bool = False  # every live record has a value


@dataclass(frozen=True)
class Money:
    key: str
    style: MoneyStyle


@dataclass(frozen=True)
class RawTable:
    system: str
    entity: str
    record_id: str | None  # SQL over ``record``: the id as the record holds it
    keys: tuple[str, ...] = ()  # keys every live record carries
    types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # key -> accepted jsonb_typeof
    stamps: tuple[Stamp, ...] = ()
    money: tuple[Money, ...] = ()
    id_pattern: str | None = None  # where the record holds no id of its own

    @property
    def schema(self) -> str:
        return f"raw_{self.system}"

    def accepted_types(self) -> dict[str, tuple[str, ...]]:
        accepted = dict(self.types)
        for s in self.stamps:
            kind = "number" if s.style == "unix" else "string"
            accepted.setdefault(s.key, (kind,) if s.required else (kind, "null"))
        for m in self.money:
            accepted.setdefault(m.key, ("number", "null") if m.style == "number" else ("string", "null"))
        return accepted


def path(key: str) -> list[str]:
    """A key of ``record`` as a JSON path: ``price.value`` is ``record -> 'price' -> 'value'``."""
    return key.split(".")


def _id(key: str) -> str:
    return f"record ->> '{key}'"


def _value(key: str) -> str:
    """SQL: ``record``'s value at ``key`` (a path) as text."""
    return "(record #>> '{" + ",".join(path(key)) + "}')"


AMO_ID, B24_ID, ONEC_ID, CREATIO_ID = _id("id"), _id("ID"), _id("Ref_Key"), _id("Id")
RBS_ID = _value("values.id")
CHILD_ID = "split_part(id, '|', 1) || '|' || (record ->> 'id')"  # <deal id>|<row id>: the row names no deal
# <deal id>|<the first 16 hex digits of the export file's checksum>
FILE_SNAPSHOT_ID = "(record ->> 'deal_id') || '|' || substring(split_part(id, '|', 2) from '^[0-9a-f]{16}$')"
NUMBER, STRING, BOOLEAN, ARRAY, OBJECT = ("number",), ("string",), ("boolean",), ("array",), ("object",)
TEXT_ID = ("string", "number")  # Megaplan: ids are strings, numbers in some answers
MAYBE_ARRAY, MAYBE_OBJECT, MAYBE_TEXT = ("array", "null"), ("object", "null"), ("string", "null")


def _unix(*keys: str, required: bool = True) -> tuple[Stamp, ...]:
    return tuple(Stamp(k, "unix", required) for k in keys)


def _iso(*keys: str, required: bool = True) -> tuple[Stamp, ...]:
    return tuple(Stamp(k, "iso", required) for k in keys)


def _rbs(*meanings: str, required: bool = True) -> tuple[Stamp, ...]:
    return tuple(Stamp(f"values.{m}", "rbs", required) for m in meanings)


def _rbs_table(entity: str, required: tuple[str, ...], optional: tuple[str, ...] = (), **more) -> RawTable:
    """A RosBiznesSoft structure: ``{structure, fields, values}``, every value text, keyed by meaning.
    Every record carries the ``required`` meanings (those ``fields:`` of sources.yaml cannot leave
    out); an installation may have no field for an ``optional`` one."""
    keys = ("structure", "fields", "values.id", *(f"values.{m}" for m in required))
    types = {
        "fields": OBJECT,
        "values": OBJECT,
        **{f"values.{m}": MAYBE_TEXT for m in (*required, *optional)},
    }
    return RawTable("rosbiznessoft", entity, RBS_ID, keys=keys, types=types, **more)


RAW_TABLES: tuple[RawTable, ...] = (
    # -- amoCRM: integers, Unix seconds ----------------------------------------------------------
    RawTable("amocrm", "leads", AMO_ID,
             keys=("id", "name", "price", "status_id", "pipeline_id", "responsible_user_id", "created_at",
                   "updated_at"),
             types={"id": NUMBER, "status_id": NUMBER, "pipeline_id": NUMBER, "responsible_user_id": NUMBER},
             stamps=(*_unix("created_at", "updated_at"), *_unix("closed_at", required=False)),
             money=(Money("price", "number"),)),
    RawTable("amocrm", "pipelines", AMO_ID, keys=("id", "name", "_embedded"),
             types={"id": NUMBER, "_embedded": OBJECT}),
    RawTable("amocrm", "loss_reasons", AMO_ID, keys=("id", "name"), types={"id": NUMBER},
             stamps=_unix("created_at", "updated_at", required=False)),
    RawTable("amocrm", "events", AMO_ID,
             keys=("id", "type", "entity_id", "created_by", "created_at", "value_after", "value_before"),
             types={"id": STRING, "type": STRING, "entity_id": NUMBER, "value_after": ARRAY,
                    "value_before": ARRAY},
             stamps=_unix("created_at")),
    RawTable("amocrm", "users", AMO_ID, keys=("id", "name"), types={"id": NUMBER}),
    RawTable("amocrm", "notes", AMO_ID, keys=("id", "entity_id", "note_type", "params", "created_at"),
             types={"id": NUMBER, "entity_id": NUMBER, "params": OBJECT},
             stamps=(*_unix("created_at"), *_unix("updated_at", required=False))),
    RawTable("amocrm", "contacts", AMO_ID, keys=("id", "name", "created_at", "updated_at"),
             types={"id": NUMBER}, stamps=_unix("created_at", "updated_at")),
    RawTable("amocrm", "companies", AMO_ID, keys=("id", "name", "created_at", "updated_at"),
             types={"id": NUMBER}, stamps=_unix("created_at", "updated_at")),
    # -- Bitrix24: strings everywhere, instants with the portal's offset ---------------------------
    RawTable("bitrix24", "deals", B24_ID,
             keys=("ID", "TITLE", "STAGE_ID", "CATEGORY_ID", "OPPORTUNITY", "CURRENCY_ID", "ASSIGNED_BY_ID",
                   "DATE_CREATE", "DATE_MODIFY", "CLOSED"),
             types={"ID": STRING, "STAGE_ID": STRING, "CLOSED": STRING},
             stamps=(*_iso("DATE_CREATE", "DATE_MODIFY"), *_iso("MOVED_TIME", required=False)),
             money=(Money("OPPORTUNITY", "numeric_string"),)),
    RawTable("bitrix24", "stage_history", B24_ID, keys=("ID", "OWNER_ID", "STAGE_ID", "CREATED_TIME"),
             types={"STAGE_ID": STRING}, stamps=_iso("CREATED_TIME")),
    RawTable("bitrix24", "categories", AMO_ID, keys=("id", "name")),
    RawTable("bitrix24", "statuses", B24_ID, keys=("ID", "ENTITY_ID", "STATUS_ID", "NAME"),
             types={"ENTITY_ID": STRING, "STATUS_ID": STRING}),
    RawTable("bitrix24", "deal_fields", None, keys=("type", "title"), types={"type": STRING},
             id_pattern=r"^[A-Z][A-Z0-9_]*$"),
    RawTable("bitrix24", "users", B24_ID, keys=("ID", "NAME"), stamps=_iso("DATE_REGISTER", required=False)),
    RawTable("bitrix24", "timeline_comments", B24_ID, keys=("ID", "ENTITY_ID", "CREATED", "COMMENT"),
             stamps=_iso("CREATED")),
    RawTable("bitrix24", "companies", B24_ID, keys=("ID", "TITLE", "DATE_CREATE", "DATE_MODIFY"),
             stamps=_iso("DATE_CREATE", "DATE_MODIFY")),
    RawTable("bitrix24", "contacts", B24_ID, keys=("ID", "ASSIGNED_BY_ID", "DATE_CREATE", "DATE_MODIFY"),
             stamps=_iso("DATE_CREATE", "DATE_MODIFY")),
    RawTable("bitrix24", "requisites", B24_ID, keys=("ID", "ENTITY_TYPE_ID", "ENTITY_ID"),
             stamps=_iso("DATE_CREATE", "DATE_MODIFY", required=False)),
    # -- 1C: GUIDs, zone-less local dates, 0001-01-01 for "no date" --------------------------------
    RawTable("onec", "deals", ONEC_ID,
             keys=("Ref_Key", "Description", "Статус", "ВидСделки_Key", "Ответственный_Key",
                   "ПотенциальнаяСуммаПродажи", "ДатаНачала", "DeletionMark"),
             types={"Ref_Key": STRING, "DeletionMark": BOOLEAN, "Закрыта": BOOLEAN},
             stamps=(Stamp("ДатаНачала", "onec", True), Stamp("ДатаОкончания", "onec")),
             money=(Money("ПотенциальнаяСуммаПродажи", "number"),)),
    RawTable("onec", "deal_kinds", ONEC_ID, keys=("Ref_Key", "Description", "Этапы"),
             types={"Ref_Key": STRING, "Этапы": ARRAY}),
    RawTable("onec", "stages", ONEC_ID, keys=("Ref_Key", "Description"), types={"Ref_Key": STRING}),
    RawTable("onec", "deal_stage_stats", "(record ->> 'Сделка_Key') || '|' || (record ->> 'ЭтапПроцесса_Key')",
             keys=("Сделка_Key", "ЭтапПроцесса_Key", "ДатаНачала", "Результат"),
             stamps=(Stamp("ДатаНачала", "onec", True), Stamp("ДатаОкончания", "onec")),
             money=(Money("Потенциал", "number"),)),
    RawTable("onec", "loss_reasons", ONEC_ID, keys=("Ref_Key", "Description"), types={"Ref_Key": STRING}),
    RawTable("onec", "partners", ONEC_ID, keys=("Ref_Key", "Description"), types={"Ref_Key": STRING},
             stamps=(Stamp("ДатаРегистрации", "onec"),)),
    RawTable("onec", "counterparties", ONEC_ID, keys=("Ref_Key", "Description", "Партнер_Key"),
             types={"Ref_Key": STRING}),
    RawTable("onec", "users", ONEC_ID, keys=("Ref_Key", "Description"), types={"Ref_Key": STRING}),
    RawTable("onec", "currencies", ONEC_ID, keys=("Ref_Key", "Code", "Description"), types={"Ref_Key": STRING}),
    RawTable("onec", "exchange_rates", "(record ->> 'Валюта_Key') || '|' || (record ->> 'Period')",
             keys=("Валюта_Key", "Period", "Курс", "Кратность"), types={"Курс": NUMBER},
             stamps=(Stamp("Period", "onec", True),), money=(Money("Курс", "number"),)),
    # -- Megaplan: links {contentType, id}, DateTime and Money objects -----------------------------
    RawTable("megaplan", "deals", AMO_ID,
             keys=("id", "name", "program.id", "state.id", "manager", "price", "timeCreated", "timeUpdated"),
             types={"id": TEXT_ID, "program": OBJECT, "state": OBJECT, "price": MAYBE_OBJECT,
                    "timeCreated": OBJECT, "timeUpdated": OBJECT, "commentsCount": ("number", "null")},
             stamps=(*_iso("timeCreated.value", "timeUpdated.value"),
                     *_iso("stateTimeUpdated.value", "lastCommentTimeCreated.value", required=False)),
             money=(Money("price.value", "number"),)),
    RawTable("megaplan", "programs", AMO_ID, keys=("id", "name", "states"), types={"id": TEXT_ID, "states": ARRAY}),
    RawTable("megaplan", "program_states", AMO_ID, keys=("id", "name", "type", "program.id"),
             types={"id": TEXT_ID, "type": STRING, "program": OBJECT}),
    RawTable("megaplan", "status_history", CHILD_ID, keys=("id", "toStatus.id", "toStatusUpdated"),
             types={"id": TEXT_ID, "toStatus": OBJECT, "fromStatus": MAYBE_OBJECT},
             stamps=(*_iso("toStatusUpdated.value"), *_iso("fromStatusUpdated.value", required=False))),
    RawTable("megaplan", "comments", CHILD_ID, keys=("id", "content", "owner", "timeCreated"),
             types={"id": TEXT_ID, "content": MAYBE_TEXT},
             stamps=(*_iso("timeCreated.value"), *_iso("timeUpdated.value", required=False))),
    RawTable("megaplan", "employees", AMO_ID, keys=("id", "name"),
             types={"id": TEXT_ID, "isWorking": ("boolean", "null"), "contactInfo": MAYBE_ARRAY}),
    RawTable("megaplan", "contractor_companies", AMO_ID, keys=("id", "name", "payers"),
             types={"id": TEXT_ID, "payers": MAYBE_ARRAY},
             stamps=_iso("timeCreated.value", "timeUpdated.value", required=False)),
    RawTable("megaplan", "deal_fields", "coalesce(record ->> 'id', record ->> 'name')", keys=("name", "hint", "type"),
             types={"name": STRING, "type": STRING, "enumValues": MAYBE_ARRAY}),
    # -- Creatio: OData 4, GUIDs (all zeros for "none"), UTC ISO dates -----------------------------
    RawTable("creatio", "opportunities", CREATIO_ID,
             keys=("Id", "Title", "StageId", "OwnerId", "AccountId", "CloseReasonId", "Amount", "CreatedOn",
                   "ModifiedOn"),
             types={"Id": STRING, "StageId": STRING, "OwnerId": MAYBE_TEXT, "Probability": ("number", "null")},
             stamps=(*_iso("CreatedOn", "ModifiedOn"), *_iso("DueDate", required=False)),
             money=(Money("Amount", "number"),)),
    RawTable("creatio", "stage_history", CREATIO_ID,
             keys=("Id", "OpportunityId", "StageId", "OwnerId", "StartDate", "CreatedOn", "ModifiedOn"),
             types={"Id": STRING, "OpportunityId": STRING, "StageId": STRING, "Historical": ("boolean", "null")},
             stamps=(*_iso("StartDate", "CreatedOn", "ModifiedOn"), *_iso("DueDate", required=False))),
    RawTable("creatio", "stages", CREATIO_ID, keys=("Id", "Name", "End", "Successful", "Number", "ModifiedOn"),
             types={"Id": STRING, "End": BOOLEAN, "Successful": BOOLEAN, "Number": NUMBER},
             stamps=_iso("ModifiedOn")),
    RawTable("creatio", "close_reasons", CREATIO_ID, keys=("Id", "Name", "ModifiedOn"), types={"Id": STRING},
             stamps=_iso("ModifiedOn")),
    RawTable("creatio", "users", CREATIO_ID, keys=("Id", "Name", "ContactId", "SysAdminUnitTypeValue", "ModifiedOn"),
             types={"Id": STRING, "SysAdminUnitTypeValue": NUMBER, "Active": ("boolean", "null")},
             stamps=_iso("ModifiedOn")),
    RawTable("creatio", "contacts", CREATIO_ID, keys=("Id", "Name", "ModifiedOn"), types={"Id": STRING},
             stamps=(*_iso("ModifiedOn"), *_iso("CreatedOn", required=False))),
    RawTable("creatio", "accounts", CREATIO_ID, keys=("Id", "Name", "ModifiedOn"),
             types={"Id": STRING, "INN": MAYBE_TEXT}, stamps=(*_iso("ModifiedOn"), *_iso("CreatedOn", required=False))),
    # -- RosBiznesSoft: {structure, fields as served, values by meaning}, text, zone-less dates ------
    _rbs_table("deals", ("deal_stage", "deal_responsible", "deal_created", "deal_modified"),
               ("deal_name", "deal_pipeline", "deal_company", "deal_amount", "deal_currency", "deal_closed",
                "deal_loss_reason"),
               stamps=(*_rbs("deal_created"), *_rbs("deal_modified", "deal_closed", required=False)),
               money=(Money("values.deal_amount", "numeric_string"),)),
    _rbs_table("stage_history", ("history_deal", "history_stage", "history_date"), ("history_user",),
               stamps=_rbs("history_date")),
    _rbs_table("pipelines", (), ("pipeline_name",)),
    _rbs_table("stages", ("stage_name", "stage_result", "stage_status"), ("stage_pipeline", "stage_sort")),
    _rbs_table("loss_reasons", (), ("loss_reason_name",)),
    _rbs_table("comments", ("comment_deal", "comment_text", "comment_date"), ("comment_author",),
               stamps=_rbs("comment_date")),
    _rbs_table("users", ("user_name",), ("user_active",)),
    _rbs_table("companies", ("company_name",), ("company_created", "company_modified"),
               stamps=_rbs("company_created", "company_modified", required=False)),
    _rbs_table("company_details", ("details_company", "details_inn"), ("details_modified",),
               stamps=_rbs("details_modified", required=False)),
    # -- export files: the row as read, the mapped cells as text, local dates ----------------------
    RawTable("file", "deals", _value("values.deal_id"),
             keys=("file", "row_number", "checksum", "columns", "values.deal_id", "values.pipeline", "values.stage",
                   "values.status", "values.amount", "values.currency", "values.created_at", "values.closed_at"),
             types={"columns": OBJECT, "values": OBJECT, "row_number": NUMBER, "values.deal_id": STRING,
                    "values.status": MAYBE_TEXT, "values.currency": MAYBE_TEXT},
             stamps=(Stamp("values.created_at", "local"), Stamp("values.closed_at", "local")),
             money=(Money("values.amount", "numeric_string"),)),
    RawTable("file", "stage_history",
             " || '|' || ".join(_value(f"values.{k}") for k in ("deal_id", "changed_at", "stage")),
             keys=("file", "row_number", "values.deal_id", "values.stage", "values.changed_at"),
             types={"values": OBJECT, "row_number": NUMBER, "values.deal_id": STRING},
             stamps=(Stamp("values.changed_at", "local", True),)),
    RawTable("file", "stage_snapshots", FILE_SNAPSHOT_ID,
             keys=("deal_id", "pipeline", "stage", "status", "observed_at", "file", "previous"),
             types={"deal_id": STRING, "previous": MAYBE_OBJECT}, stamps=_iso("observed_at")),
    RawTable("file", "files", "(record ->> 'kind') || ':' || (record ->> 'name')",
             keys=("name", "kind", "checksum", "size", "status", "modified_at"),
             types={"kind": STRING, "status": STRING, "size": NUMBER, "rows": ("number", "null")},
             stamps=_iso("modified_at")),
)  # fmt: skip

LANDING_COLUMNS = ("connection_name", "id", "record", "updated_at", "loaded_at", "is_deleted")


# -- the frame ---------------------------------------------------------------------------------
def _path(key: str) -> sql.Composable:
    return sql.SQL("{}::text[]").format(sql.Literal(path(key)))


def _held(key: str) -> sql.Composable:
    """SQL: ``record`` holds ``key`` (a path), whatever its value, null included."""
    *parent, last = path(key)
    if not parent:
        return sql.SQL("(record ? {})").format(sql.Literal(last))
    inner = sql.SQL("record #> {}").format(_path(".".join(parent)))
    return sql.SQL("coalesce(jsonb_typeof({inner}) = 'object' and ({inner}) ? {last}, false)").format(
        inner=inner, last=sql.Literal(last)
    )


def _query(table: RawTable):
    def build(schema: str, columns: frozenset[str]) -> sql.Composable:
        fields: list[sql.Composable] = [sql.SQL("connection_name, id, is_deleted, loaded_at, updated_at")]
        record_id = sql.SQL(table.record_id) if table.record_id else sql.SQL("null::text")
        fields.append(sql.SQL("{} as record_id").format(record_id))
        missing = [sql.SQL("case when not {held} then {k} end").format(held=_held(k), k=sql.Literal(k))
                   for k in table.keys]  # fmt: skip
        fields.append(
            sql.SQL("nullif(concat_ws(', ', {}), '') as missing_keys").format(sql.SQL(", ").join(missing))
            if missing
            else sql.SQL("null::text as missing_keys")
        )
        wrong = [
            sql.SQL(
                "case when {held} and not (jsonb_typeof(record #> {p}) = any({accepted})) "
                "then {k} || ': ' || jsonb_typeof(record #> {p}) end"
            ).format(held=_held(k), p=_path(k), k=sql.Literal(k), accepted=sql.Literal(list(accepted)))
            for k, accepted in table.accepted_types().items()
        ]
        fields.append(
            sql.SQL("nullif(concat_ws(', ', {}), '') as wrong_types").format(sql.SQL(", ").join(wrong))
            if wrong
            else sql.SQL("null::text as wrong_types")
        )
        for key in [s.key for s in table.stamps] + [m.key for m in table.money]:
            fields.append(sql.SQL("record #>> {} as {}").format(_path(key), sql.Identifier(f"record.{key}")))
        return sql.SQL(
            "select {fields} from {table} order by loaded_at desc nulls last limit {limit}"
        ).format(
            fields=sql.SQL(", ").join(fields),
            table=sql.Identifier(schema, table.entity),
            limit=sql.Literal(MAX_ROWS),
        )

    return build


def parse_stamps(raw: pd.Series, style: StampStyle) -> pd.Series:
    """Text as landed -> UTC timestamps; what does not parse becomes NaT."""
    import pandas as pd

    text = raw.where(raw.notna() & (raw.astype(str).str.strip() != ""))
    if style == "unix":
        seconds = pd.to_numeric(text, errors="coerce")
        seconds = seconds.where(seconds.abs() < 32_503_680_000)  # beyond the year 3000: unparseable
        return pd.to_datetime(seconds, unit="s", utc=True, errors="coerce")
    if style == "iso":
        return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    text = text.where(~_empty(text, style))
    local = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in LOCAL_FORMATS[style]:
        local = local.fillna(pd.to_datetime(text, errors="coerce", format=fmt))
    return local.dt.tz_localize("UTC")


def time_column(key: str) -> str:
    """The frame's column holding ``record ->> key`` parsed as a UTC timestamp."""
    return f"record.{key}:time"


def number_column(key: str) -> str:
    """The frame's column holding ``record ->> key`` parsed as a number."""
    return f"record.{key}:number"


def _empty(raw: pd.Series, style: StampStyle) -> pd.Series:
    """The values that mean "no date" in ``style`` (1C's 0001-01-01, MySQL's zero date)."""
    return raw.isin(EMPTY_DATES.get(style, ()))


def _derive(table: RawTable):
    def derive(frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        frame = frame.copy()
        bad_stamps = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
        for s in table.stamps:
            raw = frame[f"record.{s.key}"]
            parsed = parse_stamps(raw, s.style)
            frame[time_column(s.key)] = parsed
            present = raw.notna() & (raw.astype(str).str.strip() != "")
            present &= ~_empty(raw, s.style)
            for i in frame.index[present & parsed.isna()]:
                bad_stamps[i] = [*bad_stamps[i], f"{s.key}={raw[i]}"]
        frame["bad_timestamps"] = bad_stamps.map(lambda items: ", ".join(items) or None)
        bad_money = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
        for m in table.money:
            raw = frame[f"record.{m.key}"]
            text = raw.where(raw.notna() & (raw.astype(str).str.strip() != ""))
            value = pd.to_numeric(text, errors="coerce")
            if m.style == "numeric_string":
                value = value.where(text.astype(str).str.fullmatch(r"\s*-?\d+(\.\d+)?\s*"))
            frame[number_column(m.key)] = value.astype(float)
            for i in frame.index[text.notna() & value.isna()]:
                bad_money[i] = [*bad_money[i], f"{m.key}={raw[i]}"]
        frame["bad_amounts"] = bad_money.map(lambda items: ", ".join(items) or None)
        return frame

    return derive


def _expectations(table: RawTable):
    def build(now: dt.datetime) -> list[Expectation]:
        import great_expectations as gx

        ge = gx.expectations
        latest = now + FUTURE_SLACK
        live = ge.row_conditions.Column("is_deleted") == False  # noqa: E712 - a GX condition, not a comparison
        out: list[Expectation] = [
            ge.ExpectColumnValuesToNotBeNull(column="connection_name", description="connection_name is set"),
            ge.ExpectColumnValuesToNotBeNull(column="id", description="id is set"),
            ge.ExpectCompoundColumnsToBeUnique(
                column_list=["connection_name", "id"], description="(connection_name, id) is unique"
            ),
            ge.ExpectColumnValuesToNotBeNull(column="loaded_at", description="loaded_at is set"),
            ge.ExpectColumnValuesToBeBetween(
                column="updated_at", min_value=EARLIEST, max_value=latest,
                description="updated_at is between 2000 and a day from now",
            ),
        ]  # fmt: skip
        if table.record_id:
            out.append(
                ge.ExpectColumnPairValuesToBeEqual(
                    column_A="id", column_B="record_id", ignore_row_if="neither",
                    description=f"the id column equals the record's own id ({table.record_id})",
                )
            )  # fmt: skip
        if table.id_pattern:
            out.append(
                ge.ExpectColumnValuesToMatchRegex(
                    column="id", regex=table.id_pattern, description=f"id matches {table.id_pattern}"
                )
            )
        if table.keys:
            out.append(
                ge.ExpectColumnValuesToBeNull(
                    column="missing_keys", row_condition=live,
                    description="live records carry the keys " + ", ".join(table.keys),
                )
            )  # fmt: skip
        if table.accepted_types():
            out.append(
                ge.ExpectColumnValuesToBeNull(
                    column="wrong_types", description="values have the API's JSON types"
                )
            )
        if table.stamps:
            out.append(ge.ExpectColumnValuesToBeNull(column="bad_timestamps", description="timestamps parse"))
        for s in table.stamps:
            out.append(
                ge.ExpectColumnValuesToBeBetween(
                    column=time_column(s.key), min_value=EARLIEST, max_value=latest,
                    description=f"{s.key} is between 2000 and a day from now",
                )
            )  # fmt: skip
            if s.required:
                out.append(
                    ge.ExpectColumnValuesToNotBeNull(
                        column=time_column(s.key), row_condition=live,
                        description=f"{s.key} is set on live records",
                    )
                )  # fmt: skip
        if table.money:
            out.append(ge.ExpectColumnValuesToBeNull(column="bad_amounts", description="amounts are numbers"))
        for m in table.money:
            out.append(
                ge.ExpectColumnValuesToBeBetween(
                    column=number_column(m.key), min_value=0, max_value=AMOUNT_CAP,
                    description=f"{m.key} is between 0 and {AMOUNT_CAP:,}".replace(",", " "),
                )
            )  # fmt: skip
        return out

    return build


def suite_for(table: RawTable) -> Suite:
    return Suite(
        name=f"raw_{table.system}__{table.entity}",
        schema=table.schema,
        table=table.entity,
        severity="warn",
        required_columns=LANDING_COLUMNS,
        index_columns=("connection_name", "id"),
        query=_query(table),
        expectations=_expectations(table),
        derive=_derive(table),
    )


RAW_SUITES: dict[tuple[str, str], Suite] = {(t.system, t.entity): suite_for(t) for t in RAW_TABLES}
