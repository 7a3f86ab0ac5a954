"""The OData 4 query options a Creatio site answers: ``$filter``, ``$select``, ``$expand``,
``$orderby``, ``$top``, ``$skip``, ``$count``.

``$filter`` grammar (what is supported)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | comparison
    comparison := operand [("eq"|"ne"|"gt"|"ge"|"lt"|"le") operand]
    operand    := "(" expr ")" | literal | function "(" path "," string ")" | path
    path       := Property | Navigation "/" Property
    function   := contains | startswith | endswith
    literal    := 9b5e...-... (a GUID, unquoted) | 2024-01-01T00:00:00Z | 2024-01-01
                | 'text' ('' is a quote) | number | true | false | null

Refusals, as Creatio answers them:

- a malformed expression, an unknown property, a comparison of incompatible types, an unknown
  option: ``400`` with ``"The query specified in the URI is not valid. ..."``;
- a lookup's scalar foreign key in ``$filter`` (``StageId eq …``; filter through the navigation
  property, ``Stage/Id eq …``): ``500`` "An error has occurred." with "Column by path StageId
  not found in schema Opportunity." two levels down (Creatio resolves filter paths against its
  own schema, where the column is ``Stage``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.creatio.schema import BOOLEAN, DATETIME, DECIMAL, GUID, INT, STRING, EntitySet, Prop

Row = dict[str, Any]
# set name -> Id -> row, for navigation paths and $expand
Lookups = Callable[[str], dict[str, Row]]


class ODataError(Exception):
    """A request the site refuses: ``status`` and the JSON error body's messages."""

    def __init__(self, status: int, message: str, inner: str | None = None, inner_type: str = ""):
        super().__init__(message)
        self.status, self.message, self.inner, self.inner_type = status, message, inner, inner_type

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": "", "message": self.message}
        if self.inner is not None:
            error["innererror"] = {
                "message": "An error has occurred.",
                "type": "System.Exception",
                "stacktrace": "",
                "internalexception": {"message": self.inner, "type": self.inner_type, "stacktrace": ""},
            }
        return {"error": error}


def invalid(detail: str) -> ODataError:
    return ODataError(400, f"The query specified in the URI is not valid. {detail}")


def unknown_property(name: str, entity_set: EntitySet) -> ODataError:
    return invalid(f"Could not find a property named '{name}' on type '{entity_set.qualified}'.")


def column_not_found(path: str, entity_set: EntitySet) -> ODataError:
    return ODataError(
        500,
        "An error has occurred.",
        f"Column by path {path} not found in schema {entity_set.name}.",
        "Terrasoft.Common.ItemNotFoundException",
    )


# -- typed values --------------------------------------------------------------------------
KIND = {
    GUID: "guid",
    DATETIME: "datetime",
    STRING: "string",
    BOOLEAN: "boolean",
    INT: "number",
    DECIMAL: "number",
}
EDM = {"guid": GUID, "datetime": DATETIME, "string": STRING, "boolean": BOOLEAN, "number": DECIMAL}


def parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def typed(kind: str, value: Any) -> Any:
    """A served value as a comparable Python value (None stays None)."""
    if value is None:
        return None
    if kind == "guid":
        return str(value).lower()
    if kind == "datetime":
        return parse_instant(str(value))
    if kind == "number":
        return Decimal(str(value))
    return value


@dataclass(frozen=True)
class Literal:
    kind: str  # guid, datetime, string, boolean, number, null
    value: Any


@dataclass(frozen=True)
class Path:
    """A property of the row (``nav`` None) or of the row a navigation property points at."""

    text: str
    prop: Prop
    kind: str
    nav: Prop | None = None  # the foreign key column behind the navigation


# -- tokenizer -----------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<string>'(?P<string_value>(?:[^']|'')*)')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<word>[^\W\d]\w*)
  | (?P<punct>[(),/])
    """,
    re.VERBOSE,
)
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS = ("contains", "startswith", "endswith")


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
            raise invalid(f"Syntax error at position {pos} in '{text}'.")
        pos = m.end()
        if m.group("space") is not None:
            continue
        if m.group("guid") is not None:
            tokens.append(Token("literal", m.group(0), Literal("guid", str(uuid.UUID(m.group("guid"))))))
        elif m.group("datetime") is not None:
            try:
                instant = parse_instant(m.group("datetime"))
            except ValueError:
                raise invalid(f"Unrecognized 'Edm.DateTimeOffset' literal '{m.group(0)}'.") from None
            tokens.append(Token("literal", m.group(0), Literal("datetime", instant)))
        elif m.group("date") is not None:
            try:
                day = datetime.strptime(m.group("date"), "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError:
                raise invalid(f"Unrecognized 'Edm.Date' literal '{m.group(0)}'.") from None
            tokens.append(Token("literal", m.group(0), Literal("datetime", day)))
        elif m.group("string") is not None:
            tokens.append(
                Token("literal", m.group(0), Literal("string", m.group("string_value").replace("''", "'")))
            )
        elif m.group("number") is not None:
            try:
                number = Decimal(m.group("number").rstrip("mMdDfFlL"))
            except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
                raise invalid(f"Unrecognized number '{m.group(0)}'.") from None
            tokens.append(Token("literal", m.group(0), Literal("number", number)))
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
        else:
            tokens.append(Token("punct", m.group(0)))
    return tokens


# -- parser --------------------------------------------------------------------------------
Predicate = Callable[[Row], bool]


class _Parser:
    def __init__(self, text: str, entity_set: EntitySet, sets: dict[str, EntitySet], lookups: Lookups):
        self.text, self.entity_set, self.sets, self.lookups = text, entity_set, sets, lookups
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise invalid(f"Expression expected at position {len(self.text)} in '{self.text}'.")
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise invalid(f"'{text}' expected instead of '{token.text}' in '{self.text}'.")

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def parse(self) -> Predicate:
        if not self.tokens:
            raise invalid("The $filter expression is empty.")
        predicate = self.expr()
        extra = self.peek()
        if extra is not None:
            raise invalid(f"Syntax error: character '{extra.text}' is not valid in '{self.text}'.")
        return predicate

    def expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at_op("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.at_op("and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def unary(self) -> Predicate:
        if self.at_op("not"):
            self.take()
            inner = self.unary()
            return lambda row: not inner(row)
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.operand()
        if not self.at_op(*COMPARISONS):
            if isinstance(left, Path) and left.kind == "boolean":
                read = self.reader(left)
                return lambda row: bool(read(row))
            if callable(left):
                return left
            raise invalid(
                f"The $filter expression must evaluate to a single boolean value near '{self.text}'."
            )
        op = self.take().text
        right = self.operand()
        if callable(left) or callable(right):
            raise invalid(f"A binary operator '{op}' cannot be applied to a boolean condition.")
        return self.compare(left, op, right)

    def operand(self) -> Path | Literal | Predicate:
        token = self.take()
        if token.kind == "punct" and token.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if token.kind == "literal":
            return token.value  # type: ignore[no-any-return]
        if token.kind == "name":
            following = self.peek()
            if following is not None and following.text == "(":
                return self.function(token.text)
            return self.path(token.text)
        raise invalid(f"Syntax error: unexpected '{token.text}' in '{self.text}'.")

    def function(self, name: str) -> Predicate:
        if name not in FUNCTIONS:
            raise invalid(f"An unknown function with name '{name}' was found.")
        self.expect("(")
        target = self.take()
        if target.kind != "name":
            raise invalid(f"The first argument of '{name}' must be a property.")
        path = self.path(target.text)
        self.expect(",")
        needle = self.take()
        self.expect(")")
        if path.kind != "string" or needle.kind != "literal" or needle.value.kind != "string":
            raise invalid(f"No function signature for the function with name '{name}' matches the arguments.")
        read, text = self.reader(path), needle.value.value.lower()
        test = {
            "contains": lambda v: text in v,
            "startswith": lambda v: v.startswith(text),
            "endswith": lambda v: v.endswith(text),
        }[name]
        return lambda row: (value := read(row)) is not None and test(str(value).lower())

    def path(self, first: str) -> Path:
        names = [first]
        while (token := self.peek()) is not None and token.text == "/":
            self.take()
            names.append(self.take().text)
        text = "/".join(names)
        if len(names) == 1:
            prop = self.entity_set.prop(first)
            if prop is None:
                raise unknown_property(first, self.entity_set)
            if prop.navigation is not None:
                # Creatio resolves filter paths in its own schema, where the column is "Stage"
                raise column_not_found(first, self.entity_set)
            return Path(text, prop, KIND[prop.type])
        if len(names) > 2:
            raise invalid(f"Only one navigation step is supported in '{text}'.")
        nav = self.entity_set.navigation(names[0])
        if nav is None or nav.target not in self.sets:
            raise unknown_property(names[0], self.entity_set)
        target = self.sets[nav.target]
        prop = target.prop(names[1])
        if prop is None:
            raise unknown_property(names[1], target)
        return Path(text, prop, KIND[prop.type], nav)

    def reader(self, path: Path) -> Callable[[Row], Any]:
        name, kind = path.prop.name, path.kind
        if path.nav is None:
            return lambda row: typed(kind, row.get(name))
        fk, target = path.nav.name, path.nav.target
        assert target is not None
        index = self.lookups(target)

        def read(row: Row) -> Any:
            other = index.get(str(row.get(fk) or "").lower())
            return typed(kind, other.get(name)) if other is not None else None

        return read

    def compare(self, left: Path | Literal, op: str, right: Path | Literal) -> Predicate:
        if isinstance(left, Literal) and isinstance(right, Literal):
            raise invalid("A comparison of two literals is not supported.")
        kinds = {o.kind for o in (left, right)}
        kinds.discard("null")
        if len(kinds) > 1:
            left_type = EDM.get(left.kind, "null") if isinstance(left, Literal) else left.prop.type
            right_type = EDM.get(right.kind, "null") if isinstance(right, Literal) else right.prop.type
            raise invalid(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{left_type}' and '{right_type}' for operator kind '{_OP_NAMES[op]}'."
            )
        if op not in ("eq", "ne") and (kinds & {"boolean", "guid"} or not kinds):
            raise invalid(f"The operator '{_OP_NAMES[op]}' is not defined for these operand types.")
        fn = _PY_OPS[op]

        def value(operand: Path | Literal) -> Callable[[Row], Any]:
            if isinstance(operand, Path):
                return self.reader(operand)
            constant = operand.value
            return lambda row: constant

        lv, rv = value(left), value(right)

        def predicate(row: Row) -> bool:
            a, b = lv(row), rv(row)
            if a is None or b is None:  # null equals only null and orders with nothing
                if op == "eq":
                    return a is None and b is None
                return op == "ne" and (a is None) != (b is None)
            return fn(a, b)

        return predicate


_OP_NAMES = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
             "lt": "LessThan", "le": "LessThanOrEqual"}  # fmt: skip
_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def compile_filter(
    text: str, entity_set: EntitySet, sets: dict[str, EntitySet], lookups: Lookups
) -> Predicate:
    return _Parser(text, entity_set, sets, lookups).parse()


# -- $select, $expand, $orderby, paging ---------------------------------------------------------
def parse_select(text: str, entity_set: EntitySet) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if any(not n for n in names):
        raise invalid(f"Syntax error in $select '{text}': an empty name.")
    if "*" in names:
        return entity_set.field_names()
    for name in names:
        if entity_set.prop(name) is None:
            raise unknown_property(name, entity_set)
    return [n for n in entity_set.field_names() if n in names]


@dataclass(frozen=True)
class Expand:
    nav: Prop  # the foreign key column
    name: str  # the navigation property
    select: list[str] | None


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def parse_expand(text: str, entity_set: EntitySet, sets: dict[str, EntitySet]) -> list[Expand]:
    out = []
    for part in _split_top_level(text):
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", part)
        if not m:
            raise invalid(f"Syntax error in $expand '{text}'.")
        nav = entity_set.navigation(m.group(1))
        if nav is None or nav.target not in sets:
            raise unknown_property(m.group(1), entity_set)
        select = None
        for option in filter(None, (o.strip() for o in (m.group(2) or "").split(";"))):
            key, _, value = option.partition("=")
            if key != "$select":
                raise invalid(f"The nested option '{key}' of $expand is not supported here.")
            select = parse_select(value, sets[nav.target])
        out.append(Expand(nav, m.group(1), select))
    return out


def parse_orderby(text: str, entity_set: EntitySet) -> list[tuple[str, str, bool]]:
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise invalid(f"Syntax error in $orderby '{text}'.")
        if "/" in words[0]:
            raise invalid(f"Ordering by a related object's property ('{words[0]}') is not supported.")
        prop = entity_set.prop(words[0])
        if prop is None:
            raise unknown_property(words[0], entity_set)
        keys.append((prop.name, KIND[prop.type], len(words) == 2 and words[1] == "desc"))
    return keys


def order(rows: list[Row], keys: list[tuple[str, str, bool]]) -> list[Row]:
    result = list(rows)
    for name, kind, descending in reversed(keys):
        result.sort(key=lambda row, n=name, k=kind: _sort_key(typed(k, row.get(n))), reverse=descending)
    return result


def _sort_key(value: Any) -> tuple[Any, ...]:
    """Nulls first in ascending order, as SQL Server sorts them."""
    return (0,) if value is None else (1, value)


def parse_count(name: str, text: str) -> int:
    if not text.isdigit():
        raise invalid(
            f"Invalid value '{text}' for {name} query option found: a non-negative integer is expected."
        )
    return int(text)


@dataclass
class Query:
    predicate: Predicate | None = None
    select: list[str] | None = None
    expand: list[Expand] = field(default_factory=list)
    orderby: list[tuple[str, str, bool]] | None = None
    top: int | None = None
    skip: int = 0
    count: bool = False

    def apply(self, rows: list[Row], max_rows: int) -> tuple[list[Row], int]:
        """-> (the page, the number of rows matching ``$filter``). The page never holds more
        than ``max_rows`` (the site's MaxEntityRowCount), whatever ``$top`` asked."""
        matching = [r for r in rows if self.predicate(r)] if self.predicate else list(rows)
        if self.orderby:
            matching = order(matching, self.orderby)
        size = max_rows if self.top is None else min(self.top, max_rows)
        return matching[self.skip : self.skip + size], len(matching)


KNOWN_OPTIONS = ("$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$count", "$format")


def parse_query(
    options: list[tuple[str, str]], entity_set: EntitySet, sets: dict[str, EntitySet], lookups: Lookups
) -> Query:
    query = Query()
    for name, value in options:
        if not name.startswith("$"):
            continue
        if name == "$filter":
            query.predicate = compile_filter(value, entity_set, sets, lookups)
        elif name == "$select":
            query.select = parse_select(value, entity_set)
        elif name == "$expand":
            query.expand = parse_expand(value, entity_set, sets)
        elif name == "$orderby":
            query.orderby = parse_orderby(value, entity_set)
        elif name == "$top":
            query.top = parse_count("$top", value)
        elif name == "$skip":
            query.skip = parse_count("$skip", value)
        elif name == "$count":
            if value not in ("true", "false"):
                raise invalid(
                    f"Invalid value '{value}' for $count query option found: true or false is expected."
                )
            query.count = value == "true"
        elif name == "$format":
            if value not in ("json", "application/json"):
                raise invalid(f"The $format '{value}' is not supported: this service answers JSON.")
        else:
            raise invalid(f"The query parameter '{name}' is not supported.")
    return query
