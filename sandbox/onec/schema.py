"""The entity sets the 1C stand-in publishes, with their properties in 1C's output order.

Names follow the standard OData interface of a УТ 11 / КА 2 / ERP base: objects
(catalogs) carry ``Ref_Key``, ``DataVersion`` and ``DeletionMark``; information registers
carry their dimensions, resources and attributes and no object fields. A reference
property ``<Attr>_Key`` is followed in the output by ``<Attr>@navigationLinkUrl``.
"""

from __future__ import annotations

from dataclasses import dataclass

GUID = "Edm.Guid"
STRING = "Edm.String"
BOOLEAN = "Edm.Boolean"
DATETIME = "Edm.DateTime"
DOUBLE = "Edm.Double"
INT = "Edm.Int64"

EMPTY_REF = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"


@dataclass(frozen=True)
class Prop:
    name: str
    type: str  # an Edm type name


@dataclass(frozen=True)
class TablePart:
    """A catalog's tabular section: served inline as a list of rows."""

    name: str
    props: tuple[Prop, ...]


@dataclass(frozen=True)
class EntitySet:
    name: str
    props: tuple[Prop, ...]  # scalar properties, in output order
    keys: tuple[str, ...]  # ("Ref_Key",) for objects; the dimensions for registers
    table_parts: tuple[TablePart, ...] = ()
    tail: tuple[Prop, ...] = ()  # printed after the tabular sections (Predefined, ...)

    @property
    def is_object(self) -> bool:
        return self.keys == ("Ref_Key",)

    def all_props(self) -> tuple[Prop, ...]:
        return self.props + self.tail

    def prop(self, name: str) -> Prop | None:
        return next((p for p in self.all_props() if p.name == name), None)

    def table_part(self, name: str) -> TablePart | None:
        return next((t for t in self.table_parts if t.name == name), None)

    def field_names(self) -> list[str]:
        """Every name ``$select`` accepts, in output order."""
        return [p.name for p in self.props] + [t.name for t in self.table_parts] + [p.name for p in self.tail]

    def references(self) -> list[str]:
        """Reference properties that get a navigation link (``Партнер_Key`` -> ``Партнер``)."""
        return [p.name for p in self.all_props() if p.name.endswith("_Key") and p.name != "Ref_Key"]


def _catalog(name: str, attrs: list[Prop], table_parts: tuple[TablePart, ...] = ()) -> EntitySet:
    head = [
        Prop("Ref_Key", GUID),
        Prop("DataVersion", STRING),
        Prop("DeletionMark", BOOLEAN),
        Prop("Parent_Key", GUID),
        Prop("IsFolder", BOOLEAN),
        Prop("Code", STRING),
        Prop("Description", STRING),
    ]
    tail = (Prop("Predefined", BOOLEAN), Prop("PredefinedDataName", STRING))
    return EntitySet(name, tuple(head + attrs), ("Ref_Key",), table_parts, tail)


DEALS = _catalog(
    "Catalog_СделкиСКлиентами",
    [
        Prop("Статус", STRING),
        Prop("Закрыта", BOOLEAN),
        Prop("ВидСделки_Key", GUID),
        Prop("Партнер_Key", GUID),
        Prop("Ответственный_Key", GUID),
        Prop("ПричинаПроигрышаСделки_Key", GUID),
        Prop("ПотенциальнаяСуммаПродажи", DOUBLE),
        Prop("ВалютаПервичногоСпроса_Key", GUID),
        Prop("ВероятностьУспешногоЗавершения", DOUBLE),
        Prop("ДатаНачала", DATETIME),
        Prop("ДатаОкончания", DATETIME),
        Prop("Комментарий", STRING),
    ],
)

DEAL_KINDS = _catalog(
    "Catalog_ВидыСделокСКлиентами",
    [Prop("ТипСделки", STRING), Prop("Комментарий", STRING)],
    (
        TablePart(
            "Этапы",
            (
                Prop("Ref_Key", GUID),
                Prop("LineNumber", STRING),
                Prop("Этап_Key", GUID),
            ),
        ),
    ),
)

STAGES = _catalog(
    "Catalog_СостоянияПроцессов",
    [Prop("РеквизитДопУпорядочивания", INT)],
)

DEAL_STAGE_STATS = EntitySet(
    "InformationRegister_СтатистикаСделокСКлиентами",
    (
        Prop("Сделка_Key", GUID),
        Prop("ЭтапПроцесса_Key", GUID),
        Prop("ДатаНачала", DATETIME),
        Prop("ДатаОкончания", DATETIME),
        Prop("Продолжительность", INT),
        Prop("Потенциал", DOUBLE),
        Prop("Результат", STRING),
        Prop("Ответственный_Key", GUID),
    ),
    ("Сделка_Key", "ЭтапПроцесса_Key"),
)

LOSS_REASONS = _catalog("Catalog_ПричиныПроигрышаСделок", [Prop("Описание", STRING)])

PARTNERS = _catalog(
    "Catalog_Партнеры",
    [
        Prop("НаименованиеПолное", STRING),
        Prop("Клиент", BOOLEAN),
        Prop("ДатаРегистрации", DATETIME),
        Prop("Комментарий", STRING),
    ],
)

COUNTERPARTIES = _catalog(
    "Catalog_Контрагенты",
    [
        Prop("НаименованиеПолное", STRING),
        Prop("ИНН", STRING),
        Prop("КПП", STRING),
        Prop("ЮрФизЛицо", STRING),
        Prop("Партнер_Key", GUID),
    ],
)

USERS = _catalog(
    "Catalog_Пользователи",
    [Prop("Недействителен", BOOLEAN), Prop("Служебный", BOOLEAN)],
    (
        TablePart(
            "КонтактнаяИнформация",
            (
                Prop("Ref_Key", GUID),
                Prop("LineNumber", STRING),
                Prop("Тип", STRING),
                Prop("Вид_Key", GUID),
                Prop("Представление", STRING),
                Prop("АдресЭП", STRING),
            ),
        ),
    ),
)

CURRENCIES = _catalog("Catalog_Валюты", [Prop("НаименованиеПолное", STRING)])

EXCHANGE_RATES = EntitySet(
    "InformationRegister_КурсыВалют",
    (
        Prop("Period", DATETIME),
        Prop("Валюта_Key", GUID),
        Prop("Курс", DOUBLE),
        Prop("Кратность", INT),
    ),
    ("Period", "Валюта_Key"),
)

ENTITY_SETS: dict[str, EntitySet] = {
    s.name: s
    for s in (
        DEALS,
        DEAL_KINDS,
        STAGES,
        DEAL_STAGE_STATS,
        LOSS_REASONS,
        PARTNERS,
        COUNTERPARTIES,
        USERS,
        CURRENCIES,
        EXCHANGE_RATES,
    )
}
