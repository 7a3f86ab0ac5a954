"""The XML of RosBiznesSoft's API: reading a ``<request>`` of ``<action>``s and writing the
``<response>`` that mirrors it. Pure functions over strings and rows; no HTTP here.

A ``list`` action names a structure and may carry ``fields`` (empty elements naming the
columns; none: every column), ``filters`` (each ``field``/``operation``/``value``, all must
hold), ``orders`` (``field``/``type`` asc|desc) and ``limit`` (``first`` offset, ``number``
rows, at most ``MAX_NUMBER``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from xml.sax.saxutils import escape, quoteattr

MAX_NUMBER = 1000  # rows one list action may ask for
OPERATIONS = ("=", "!=", "<>", ">", ">=", "<", "<=", "like")
DECLARATION = '<?xml version="1.0" encoding="utf8" ?>'


class RequestError(ValueError):
    """The request (or one action of it) cannot be served: the text goes into ``<error>``."""


@dataclass
class Filter:
    field: str
    operation: str
    value: str


@dataclass
class Order:
    field: str
    descending: bool = False


@dataclass
class Action:
    type: str
    uid: str | None
    element: ET.Element
    structure: str = ""
    fields: list[str] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    first: int = 0
    number: int | None = None
    problem: str | None = None  # why this action cannot be served (answered with its error)

    def text(self, name: str) -> str:
        return (self.element.findtext(name) or "").strip()


def parse_request(xml_text: str) -> list[Action]:
    """The actions of a ``<request>``; a malformed document is a ``RequestError``."""
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", xml_text)  # the vendor's own encoding name ('utf8') trips expat
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise RequestError(f"Ошибка разбора XML: {exc}") from None
    if root.tag != "request":
        raise RequestError(f"Корневой тег должен быть <request>, получен <{root.tag}>")
    actions = [_checked(el) for el in root.findall("action")]
    if not actions:
        raise RequestError("В запросе нет ни одного тега <action>")
    return actions


def _checked(el: ET.Element) -> Action:
    try:
        return _action(el)
    except RequestError as exc:
        return Action(type=el.get("type", ""), uid=el.get("uid"), element=el, problem=str(exc))


def _action(el: ET.Element) -> Action:
    action = Action(type=el.get("type", ""), uid=el.get("uid"), element=el)
    structure = el.find("structure")
    if structure is None:
        return action
    action.structure = structure.get("name", "")
    fields = structure.find("fields")
    if fields is not None:
        action.fields = [child.tag for child in fields]
    filters = structure.find("filters")
    for f in filters.findall("filter") if filters is not None else []:
        action.filters.append(
            Filter(
                (f.findtext("field") or "").strip(),
                (f.findtext("operation") or "").strip(),
                f.findtext("value") or "",
            )
        )
    orders = structure.find("orders")
    for o in orders.findall("order") if orders is not None else []:
        kind = (o.findtext("type") or "asc").strip().lower()
        if kind not in ("asc", "desc"):
            raise RequestError(f"Неизвестный тип сортировки: {kind}")
        action.orders.append(Order((o.findtext("field") or "").strip(), kind == "desc"))
    limit = structure.find("limit")
    if limit is not None:
        try:
            action.first = int((limit.findtext("first") or "0").strip())
            action.number = int((limit.findtext("number") or "").strip())
        except ValueError:
            raise RequestError("limit: first и number должны быть целыми числами") from None
        if action.first < 0 or action.number < 1:
            raise RequestError("limit: first не может быть отрицательным, number должен быть больше нуля")
        if action.number > MAX_NUMBER:
            raise RequestError(f"limit: number не может быть больше {MAX_NUMBER}")
    return action


# -- serving a list ----------------------------------------------------------------------------
def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text) if re.fullmatch(r"-?\d+(\.\d+)?", text.strip()) else None
    except InvalidOperation:
        return None


def _matches(value: str, f: Filter) -> bool:
    if f.operation == "like":
        pattern = re.escape(f.value).replace("%", ".*").replace("_", ".")
        return re.fullmatch(pattern, value, re.IGNORECASE | re.DOTALL) is not None
    left: Decimal | str
    right: Decimal | str
    a, b = _number(value), _number(f.value)
    left, right = (a, b) if a is not None and b is not None else (value, f.value)
    if f.operation == "=":
        return left == right
    if f.operation in ("!=", "<>"):
        return left != right
    if value == "" and f.operation in (">", ">=", "<", "<="):
        return False  # an empty date or number is never before or after anything
    return {
        ">": lambda: left > right,  # type: ignore[operator]
        ">=": lambda: left >= right,  # type: ignore[operator]
        "<": lambda: left < right,  # type: ignore[operator]
        "<=": lambda: left <= right,  # type: ignore[operator]
    }[f.operation]()


def _sort_key(value: str) -> tuple[int, Decimal | str]:
    number = _number(value)
    return (0, number) if number is not None else (1, value)


def select(action: Action, rows: list[dict[str, str]], known_fields: list[str]) -> list[dict[str, str]]:
    """The rows a list action asks for: filtered, ordered, paged and cut to its fields."""
    for name in [f.field for f in action.filters] + [o.field for o in action.orders] + action.fields:
        if name not in known_fields:
            raise RequestError(f"Поле {name} не найдено в структуре {action.structure}")
    for f in action.filters:
        if f.operation not in OPERATIONS:
            raise RequestError(f"Неизвестная операция фильтра: {f.operation}")
    out = [r for r in rows if all(_matches(r.get(f.field, ""), f) for f in action.filters)]
    for order in reversed(action.orders):  # stable: the first order is the main one
        out.sort(key=lambda r, o=order: _sort_key(r.get(o.field, "")), reverse=order.descending)
    end = None if action.number is None else action.first + action.number
    out = out[action.first : end]
    if action.fields:
        out = [{name: r.get(name, "") for name in action.fields} for r in out]
    return out


# -- writing the answer --------------------------------------------------------------------------
def _open(action: Action) -> str:
    uid = f" uid={quoteattr(action.uid)}" if action.uid is not None else ""
    return f"<action type={quoteattr(action.type)}{uid}>"


def _value(text: str) -> str:
    if any(c in text for c in "<>&") or "\n" in text:
        return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
    return escape(text)


def list_answer(action: Action, rows: list[dict[str, str]]) -> str:
    items = "".join(
        "<item>" + "".join(f"<{k}>{_value(v)}</{k}>" for k, v in row.items()) + "</item>" for row in rows
    )
    return (
        f"{_open(action)}<status>true</status>"
        f"<structure name={quoteattr(action.structure)}>{items}</structure></action>"
    )


def auth_answer(action: Action, sess_id: str) -> str:
    return f"{_open(action)}<status>true</status><sess_id>{escape(sess_id)}</sess_id></action>"


def error_answer(action: Action | None, message: str) -> str:
    if action is None:
        return f"<status>false</status><error>{escape(message)}</error>"
    return f"{_open(action)}<status>false</status><error>{escape(message)}</error></action>"


def response(parts: list[str]) -> str:
    return f"{DECLARATION}\n<response>{''.join(parts)}</response>\n"
