"""Suites for the landed raw tables (``raw_<system>.<entity>``): does each record look like
what its API serves?

Every raw table is checked for: its key columns set and ``(connection_name, id)`` unique; the
id column equal to the id the record itself holds (``id``, ``ID``, ``Ref_Key``, or the pair a
register row is keyed by); the keys every live record carries; the JSON types of the values
the models read; timestamps that parse and are plausible (not before 2000, not more than a
day ahead); amounts that parse and are plausible (not negative, below ``AMOUNT_CAP``).

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

StampStyle = Literal["unix", "iso", "onec"]  # amoCRM Unix seconds, ISO 8601 with offset, 1C local
MoneyStyle = Literal["number", "numeric_string"]  # a JSON number, or Bitrix24's "19999.99"


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


def _id(key: str) -> str:
    return f"record ->> '{key}'"


AMO_ID, B24_ID, ONEC_ID = _id("id"), _id("ID"), _id("Ref_Key")
NUMBER, STRING, BOOLEAN, ARRAY, OBJECT = ("number",), ("string",), ("boolean",), ("array",), ("object",)


def _unix(*keys: str, required: bool = True) -> tuple[Stamp, ...]:
    return tuple(Stamp(k, "unix", required) for k in keys)


def _iso(*keys: str, required: bool = True) -> tuple[Stamp, ...]:
    return tuple(Stamp(k, "iso", required) for k in keys)


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
)  # fmt: skip

LANDING_COLUMNS = ("connection_name", "id", "record", "updated_at", "loaded_at", "is_deleted")


# -- the frame ---------------------------------------------------------------------------------
def _query(table: RawTable):
    def build(schema: str, columns: frozenset[str]) -> sql.Composable:
        fields: list[sql.Composable] = [sql.SQL("connection_name, id, is_deleted, loaded_at, updated_at")]
        record_id = sql.SQL(table.record_id) if table.record_id else sql.SQL("null::text")
        fields.append(sql.SQL("{} as record_id").format(record_id))
        missing = [
            sql.SQL("case when not (record ? {k}) then {k} end").format(k=sql.Literal(k)) for k in table.keys
        ]
        fields.append(
            sql.SQL("nullif(concat_ws(', ', {}), '') as missing_keys").format(sql.SQL(", ").join(missing))
            if missing
            else sql.SQL("null::text as missing_keys")
        )
        wrong = [
            sql.SQL(
                "case when record ? {k} and not (jsonb_typeof(record -> {k}) = any({accepted})) "
                "then {k} || ': ' || jsonb_typeof(record -> {k}) end"
            ).format(k=sql.Literal(k), accepted=sql.Literal(list(accepted)))
            for k, accepted in table.accepted_types().items()
        ]
        fields.append(
            sql.SQL("nullif(concat_ws(', ', {}), '') as wrong_types").format(sql.SQL(", ").join(wrong))
            if wrong
            else sql.SQL("null::text as wrong_types")
        )
        for key in [s.key for s in table.stamps] + [m.key for m in table.money]:
            fields.append(
                sql.SQL("record ->> {} as {}").format(sql.Literal(key), sql.Identifier(f"record.{key}"))
            )
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
    text = text.where(text != ONEC_EMPTY_DATE)
    local = pd.to_datetime(text, errors="coerce", format="%Y-%m-%dT%H:%M:%S")
    return local.dt.tz_localize("UTC")


def time_column(key: str) -> str:
    """The frame's column holding ``record ->> key`` parsed as a UTC timestamp."""
    return f"record.{key}:time"


def number_column(key: str) -> str:
    """The frame's column holding ``record ->> key`` parsed as a number."""
    return f"record.{key}:number"


def _empty_1c(raw: pd.Series) -> pd.Series:
    return raw == ONEC_EMPTY_DATE


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
            if s.style == "onec":
                present &= ~_empty_1c(raw)
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
