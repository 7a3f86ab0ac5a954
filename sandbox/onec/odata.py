"""The OData v3 query options the 1C standard interface answers: ``$filter``, ``$select``,
``$orderby``, ``$top``, ``$skip``, ``$inlinecount``.

``$filter`` grammar (what is supported)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | comparison
    comparison := operand [("eq"|"ne"|"gt"|"ge"|"lt"|"le") operand]
    operand    := "(" expr ")" | property | literal
    literal    := guid'…' | datetime'…' | '…' ('' escapes a quote) | number | true | false | null

A property is compared with a literal of its own type (``Ref_Key eq guid'…'``,
``ДатаНачала ge datetime'2025-01-01T00:00:00'``, ``Статус eq 'Проиграна'``); a mismatch is
an error, as in 1C. A bare Boolean property is a condition by itself (``not DeletionMark``).
Errors carry 1C's codes: 14 "Ошибка разбора опций запроса" for syntax, 10 "Запрошенное
свойство не найдено" for an unknown property, 21 for a function call.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.onec.schema import BOOLEAN, DATETIME, DOUBLE, GUID, INT, STRING, EntitySet

Row = dict[str, Any]

PARSE_ERROR = "14"
UNKNOWN_PROPERTY = "10"
NOT_IMPLEMENTED_FUNCTION = "21"


class ODataQueryError(Exception):
    """A request 1C refuses: ``code`` and ``message`` go into ``odata.error``."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def parse_error(detail: str) -> ODataQueryError:
    return ODataQueryError(PARSE_ERROR, f"Ошибка разбора опций запроса: {detail}")


# -- typed values --------------------------------------------------------------------------
KIND = {
    GUID: "guid",
    DATETIME: "datetime",
    STRING: "string",
    BOOLEAN: "boolean",
    DOUBLE: "number",
    INT: "number",
}
KIND_LITERAL = {
    "guid": "guid'…'",
    "datetime": "datetime'…'",
    "string": "'…'",
    "boolean": "true/false",
    "number": "a number",
}


def parse_datetime(text: str) -> datetime:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise parse_error(f"неверное значение даты datetime'{text}' (ожидается ГГГГ-ММ-ДДТЧЧ:ММ:СС)")


def typed(kind: str, value: Any) -> Any:
    """A served JSON value as a comparable Python value."""
    if kind == "guid":
        return str(value).lower()
    if kind == "datetime":
        try:
            return datetime.fromisoformat(str(value))  # how the stand-in writes every date
        except ValueError:
            return parse_datetime(str(value))
    if kind == "number":
        return Decimal(str(value))
    return value


@dataclass(frozen=True)
class Literal:
    kind: str  # guid, datetime, string, boolean, number, null
    value: Any


@dataclass(frozen=True)
class Field:
    name: str
    kind: str


# -- tokenizer -----------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<guid>guid'(?P<guid_value>[^']*)')
  | (?P<datetime>datetime'(?P<datetime_value>[^']*)')
  | (?P<string>'(?P<string_value>(?:[^']|'')*)')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<word>[^\W\d]\w*)
  | (?P<paren>[(),])
  | (?P<slash>/)
    """,
    re.VERBOSE,
)
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise parse_error(f"непонятный символ {text[pos]!r} в позиции {pos + 1} выражения $filter")
        pos = m.end()
        if m.group("space") is not None:
            continue
        if m.group("guid") is not None:
            raw = m.group("guid_value")
            try:
                value = str(uuid.UUID(raw))
            except ValueError:
                raise parse_error(f"неверное значение guid'{raw}'") from None
            if len(raw) != 36:
                raise parse_error(f"неверное значение guid'{raw}'")
            tokens.append(Token("literal", m.group(0), Literal("guid", value)))
        elif m.group("datetime") is not None:
            tokens.append(
                Token("literal", m.group(0), Literal("datetime", parse_datetime(m.group("datetime_value"))))
            )
        elif m.group("string") is not None:
            tokens.append(
                Token("literal", m.group(0), Literal("string", m.group("string_value").replace("''", "'")))
            )
        elif m.group("number") is not None:
            raw = m.group("number").rstrip("mMdDfFlL")
            try:
                tokens.append(Token("literal", m.group(0), Literal("number", Decimal(raw))))
            except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
                raise parse_error(f"неверное число {raw}") from None
        elif m.group("word") is not None:
            word = m.group("word")
            if word in ("true", "false"):
                tokens.append(Token("literal", word, Literal("boolean", word == "true")))
            elif word == "null":
                tokens.append(Token("literal", word, Literal("null", None)))
            elif word in COMPARISONS or word in ("and", "or", "not"):
                tokens.append(Token("op", word))
            else:
                tokens.append(Token("name", word))
        elif m.group("slash") is not None:
            raise parse_error("пути через '/' (свойства связанных объектов) в $filter не поддерживаются")
        else:
            tokens.append(Token("paren", m.group(0)))
    return tokens


# -- parser --------------------------------------------------------------------------------
Predicate = Callable[[Row], bool]


class _Parser:
    def __init__(self, text: str, entity_set: EntitySet):
        self.text = text
        self.entity_set = entity_set
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise parse_error(f"выражение $filter оборвано: {self.text!r}")
        self.pos += 1
        return token

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def parse(self) -> Predicate:
        if not self.tokens:
            raise parse_error("пустое выражение $filter")
        predicate = self.expr()
        if self.peek() is not None:
            raise parse_error(f"лишнее {self.peek().text!r} в выражении $filter")  # type: ignore[union-attr]
        return predicate

    def expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at_op("or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda row: any(p(row) for p in parts)

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.at_op("and"):
            self.take()
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda row: all(p(row) for p in parts)

    def unary(self) -> Predicate:
        if self.at_op("not"):
            self.take()
            inner = self.unary()
            return lambda row: not inner(row)
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        if not self.at_op(*COMPARISONS):
            if isinstance(left, Field) and left.kind == "boolean":
                name = left.name
                return lambda row: bool(row[name])
            if callable(left):
                return left
            raise parse_error(f"ожидалось сравнение после {self._describe(left)}")
        op = self.take().text
        right = self.operand()
        if callable(left) or callable(right):
            raise parse_error(f"условие в скобках нельзя сравнивать оператором {op}")
        return _compare(left, op, right)

    def operand(self) -> Field | Literal | Predicate:
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            inner = self.expr()
            closing = self.take()
            if closing.text != ")":
                raise parse_error(f"ожидалась ')' вместо {closing.text!r}")
            return inner
        if token.kind == "literal":
            return token.value
        if token.kind == "name":
            following = self.peek()
            if following is not None and following.kind == "paren" and following.text == "(":
                raise ODataQueryError(
                    NOT_IMPLEMENTED_FUNCTION, f"Вызов нереализованной функции: {token.text} (в $filter)"
                )
            prop = self.entity_set.prop(token.text)
            if prop is None:
                raise unknown_property(token.text, self.entity_set, "$filter")
            return Field(prop.name, KIND[prop.type])
        raise parse_error(f"неожиданное {token.text!r} в выражении $filter")

    @staticmethod
    def _describe(operand: Field | Literal) -> str:
        return operand.name if isinstance(operand, Field) else repr(operand.value)


def unknown_property(name: str, entity_set: EntitySet, option: str) -> ODataQueryError:
    return ODataQueryError(
        UNKNOWN_PROPERTY, f"Запрошенное свойство не найдено: {name} (в {option} набора {entity_set.name})"
    )


_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _compare(left: Field | Literal, op: str, right: Field | Literal) -> Predicate:
    if isinstance(left, Literal) and isinstance(right, Literal):
        raise parse_error("сравнение двух литералов: одна из сторон должна быть свойством")
    kinds = {o.kind for o in (left, right)}
    if "null" in kinds:
        if op not in ("eq", "ne"):
            raise parse_error(f"null сравнивается только операторами eq и ne, не {op}")
        # 1C has no nulls: an unset value is the type's empty value
        return (lambda row: False) if op == "eq" else (lambda row: True)
    if len(kinds) != 1:
        field = left if isinstance(left, Field) else right
        other = right if field is left else left
        assert isinstance(field, Field)
        raise parse_error(
            f"несовместимые типы: свойство {field.name} сравнивается с {KIND_LITERAL.get(other.kind, other.kind)}"
            f" — нужен литерал вида {KIND_LITERAL[field.kind]}"
        )
    if op not in ("eq", "ne") and "boolean" in kinds:
        raise parse_error(f"значения Boolean сравниваются только eq и ne, не {op}")
    fn = _PY_OPS[op]

    def value(operand: Field | Literal) -> Callable[[Row], Any]:
        if isinstance(operand, Field):
            name, kind = operand.name, operand.kind
            return lambda row: typed(kind, row[name])
        constant = operand.value.lower() if operand.kind == "guid" else operand.value
        return lambda row: constant

    lv, rv = value(left), value(right)
    return lambda row: fn(lv(row), rv(row))


def compile_filter(text: str, entity_set: EntitySet) -> Predicate:
    return _Parser(text, entity_set).parse()


# -- $select, $orderby, paging -------------------------------------------------------------
def parse_select(text: str, entity_set: EntitySet) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if any(not n for n in names):
        raise parse_error(f"пустое имя в $select={text!r}")
    if "*" in names:
        return entity_set.field_names()
    known = set(entity_set.field_names())
    for name in names:
        if name not in known:
            raise unknown_property(name, entity_set, "$select")
    # 1C prints properties in the object's order, not in the order asked
    return [n for n in entity_set.field_names() if n in names]


def parse_orderby(text: str, entity_set: EntitySet) -> list[tuple[str, str, bool]]:
    """``"A asc, B desc"`` -> [(name, kind, descending)]."""
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise parse_error(
                f"неверный элемент $orderby: {part.strip()!r} (ожидается «Свойство [asc|desc]»)"
            )
        prop = entity_set.prop(words[0])
        if prop is None:
            raise unknown_property(words[0], entity_set, "$orderby")
        keys.append((prop.name, KIND[prop.type], len(words) == 2 and words[1] == "desc"))
    return keys


def order(rows: list[Row], keys: list[tuple[str, str, bool]]) -> list[Row]:
    result = list(rows)
    for name, kind, descending in reversed(keys):
        result.sort(key=lambda row, n=name, k=kind: typed(k, row[n]), reverse=descending)
    return result


def parse_count(name: str, text: str) -> int:
    if not text.isdigit():
        raise parse_error(f"{name} должен быть неотрицательным целым, получено {text!r}")
    return int(text)


@dataclass
class Query:
    """The parsed query options of one request."""

    predicate: Predicate | None = None
    select: list[str] | None = None
    orderby: list[tuple[str, str, bool]] | None = None
    top: int | None = None
    skip: int = 0
    inline_count: bool = False

    def apply(self, rows: list[Row]) -> tuple[list[Row], int]:
        """-> (the page, the number of rows matching ``$filter``)."""
        matching = [r for r in rows if self.predicate(r)] if self.predicate else list(rows)
        if self.orderby:
            matching = order(matching, self.orderby)
        page = matching
        if not self.inline_count:  # $inlinecount=allpages makes 1C ignore $skip and $top
            page = matching[self.skip :]
            if self.top is not None:
                page = page[: self.top]
        return page, len(matching)


KNOWN_OPTIONS = ("$filter", "$select", "$orderby", "$top", "$skip", "$inlinecount", "$format", "$expand")


def parse_query(options: list[tuple[str, str]], entity_set: EntitySet) -> Query:
    query = Query()
    for name, value in options:
        if not name.startswith("$"):
            continue  # allowedOnly and other 1C switches do not change what the stand-in serves
        if name == "$filter":
            query.predicate = compile_filter(value, entity_set)
        elif name == "$select":
            query.select = parse_select(value, entity_set)
        elif name == "$orderby":
            query.orderby = parse_orderby(value, entity_set)
        elif name == "$top":
            query.top = parse_count("$top", value)
        elif name == "$skip":
            query.skip = parse_count("$skip", value)
        elif name == "$inlinecount":
            if value not in ("allpages", "none"):
                raise parse_error(f"$inlinecount принимает allpages или none, получено {value!r}")
            query.inline_count = value == "allpages"
        elif name == "$expand":
            raise ODataQueryError("0", "Возможность не поддерживается: $expand (в этой базе)")
        elif name != "$format":
            raise parse_error(f"неизвестный параметр {name}")
    return query
