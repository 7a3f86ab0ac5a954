"""The 1C entity sets landed in ``raw_onec``, their keys, and what makes a record landable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"  # 1C dates: no zone, the base's local time


@dataclass(frozen=True)
class Catalog:
    """An object set: key ``Ref_Key``, a ``DataVersion`` that changes on every write."""

    entity: str
    set_name: str

    @property
    def orderby(self) -> str:
        return "Ref_Key"


@dataclass(frozen=True)
class Register:
    """An information register: no ``Ref_Key``, no ``DataVersion``; its key is its dimensions.

    ``id_fields`` make the landed id (joined with ``|``); ``order_fields`` are the same
    fields in the order the set is paged; ``date_fields`` hold 1C datetimes."""

    entity: str
    set_name: str
    id_fields: tuple[str, ...]
    order_fields: tuple[str, ...]
    date_fields: tuple[str, ...] = ()

    @property
    def orderby(self) -> str:
        return ",".join(self.order_fields)

    def record_id(self, record: dict[str, Any]) -> str:
        return "|".join(str(record[f]) for f in self.id_fields)

    def key_clause(self, record_id: str) -> str:
        """``(Сделка_Key eq guid'…' and ЭтапПроцесса_Key eq guid'…')`` for one landed id."""
        values = dict(zip(self.id_fields, record_id.split("|"), strict=True))
        parts = [
            f"{f} eq {'datetime' if f in self.date_fields else 'guid'}'{values[f]}'" for f in self.id_fields
        ]
        return "(" + " and ".join(parts) + ")"


DEALS = Catalog("deals", "Catalog_СделкиСКлиентами")
CATALOGS: tuple[Catalog, ...] = (
    Catalog("currencies", "Catalog_Валюты"),
    Catalog("users", "Catalog_Пользователи"),
    Catalog("partners", "Catalog_Партнеры"),
    Catalog("counterparties", "Catalog_Контрагенты"),
    Catalog("loss_reasons", "Catalog_ПричиныПроигрышаСделок"),
    Catalog("stages", "Catalog_СостоянияПроцессов"),
    Catalog("deal_kinds", "Catalog_ВидыСделокСКлиентами"),
    DEALS,
)
DEAL_STAGE_STATS = Register(
    "deal_stage_stats",
    "InformationRegister_СтатистикаСделокСКлиентами",
    id_fields=("Сделка_Key", "ЭтапПроцесса_Key"),
    order_fields=("Сделка_Key", "ЭтапПроцесса_Key"),
)
EXCHANGE_RATES = Register(
    "exchange_rates",
    "InformationRegister_КурсыВалют",
    id_fields=("Валюта_Key", "Period"),
    order_fields=("Period", "Валюта_Key"),
    date_fields=("Period",),
)
REGISTERS: tuple[Register, ...] = (DEAL_STAGE_STATS, EXCHANGE_RATES)
ALL_SETS = (*CATALOGS, *REGISTERS)

# the order of the raw tables (the Dagster multi-asset lists them in this order)
ENTITIES: tuple[str, ...] = (
    "deals",
    "deal_kinds",
    "stages",
    "deal_stage_stats",
    "loss_reasons",
    "partners",
    "counterparties",
    "users",
    "currencies",
    "exchange_rates",
)


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and GUID.match(value) is not None


def parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        return None


def catalog_problem(record: Any) -> str | None:
    """Why a catalog record cannot be landed, or None."""
    if not isinstance(record, dict):
        return f"the record is a {type(record).__name__}, not an object"
    if not is_guid(record.get("Ref_Key")):
        return f"Ref_Key {record.get('Ref_Key')!r} is not a GUID"
    if not isinstance(record.get("DataVersion"), str):
        return f"DataVersion {record.get('DataVersion')!r} of {record['Ref_Key']} is not a string"
    return None


def register_problem(register: Register, record: Any) -> str | None:
    """Why a register record cannot be landed, or None."""
    if not isinstance(record, dict):
        return f"the record is a {type(record).__name__}, not an object"
    for name in register.id_fields:
        value = record.get(name)
        if name in register.date_fields:
            if parse_date(value) is None:
                return f"{name} {value!r} is not a 1C datetime (yyyy-mm-ddThh:mm:ss)"
        elif not is_guid(value):
            return f"{name} {value!r} is not a GUID"
    for name in register.date_fields:
        if name not in register.id_fields and parse_date(record.get(name)) is None:
            return f"{name} {record.get(name)!r} is not a 1C datetime (yyyy-mm-ddThh:mm:ss)"
    return None
