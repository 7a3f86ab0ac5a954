"""Reading with the fewest requests: keyset streams chained inside batches, and single calls.

A ``KeysetStream`` reads one list by ID with the portal's fast paging (``order[ID]=ASC``,
``filter[>ID]=<last id>``, ``start=-1``: no total is counted). Inside one batch its pages are
chained: the first command starts after the stream's position, each next one after the last
row of the page before it (``filter[>ID]=$result[<previous key>][49][ID]``), so one request
reads up to 50 pages of 50 rows. Only a contiguous prefix of full pages is trusted: the
first short page ends the stream, and whatever the commands after it answered (a reference
to a row that does not exist resolves to nothing, or to an error) is ignored.

A ``Call`` is any other command: a dictionary (users, funnels, stages, field descriptions),
or one deal's timeline comments (one deal per call, by the method's design).

``Planner.rounds()`` composes each batch from what is pending -- single calls first, then
the remaining slots shared among the streams still reading -- sends it, and yields what came
back as a ``Round``. The caller lands a round and may add calls before the next one is
composed. Commands of a method that is near its operating-time budget are held back until
the method's reset; failed commands are retried a few times, then the run fails with the
method and the portal's error.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from extractors.bitrix24.client import (
    MAX_COMMANDS,
    PAGE_SIZE,
    Bitrix24Client,
    CommandAnswer,
    CommandError,
    encode,
)
from extractors.common.errors import CredentialError, ExtractError

MAX_FAILURES = 4  # a command failing this many times in a row fails the run
MAX_OPERATING_WAITS = 30  # resets waited for one command before giving up

CREDENTIAL_ERRORS = {
    "INVALID_CREDENTIALS",
    "NO_AUTH_FOUND",
    "expired_token",
    "invalid_token",
    "insufficient_scope",
    "ACCESS_DENIED",
    "WRONG_AUTH_TYPE",
}
FATAL_ERRORS = {
    "ERROR_METHOD_NOT_FOUND": "the portal does not offer this method to the webhook (check its scopes)",
    "OVERLOAD_LIMIT": "the portal has blocked REST calls from this webhook; ask Bitrix24 support to lift it",
    "ERROR_BATCH_METHOD_NOT_ALLOWED": "the method may not run inside a batch",
}


def row_id(row: Any) -> int | None:
    """A row's integer ID (the portal writes ``"37"``; stage history writes ``37``)."""
    if not isinstance(row, dict):
        return None
    value = row.get("ID")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


@dataclass(eq=False)  # two calls are the same only if they are one
class Call:
    method: str
    params: dict[str, Any]
    tag: tuple[str, ...]  # what the answer is for: ("users",), ("comments", "<deal id>"), ...
    failures: int = 0
    operating_waits: int = 0

    def command(self) -> str:
        return f"{self.method}?{encode(self.params)}" if self.params else self.method


@dataclass
class StreamPage:
    """What one round read of a stream: ``rows`` cover the IDs in (``after``, ``upto``],
    ``upto`` None meaning "to the end" (the stream is done)."""

    stream: KeysetStream
    rows: list[Any]
    after: int
    upto: int | None
    done: bool


class KeysetStream:
    def __init__(
        self,
        name: str,
        key: str,
        method: str,
        params: dict[str, Any],
        *,
        rows_key: str | None = None,
        after_id: int = 0,
    ):
        self.name, self.key, self.method = name, key, method
        self.params = params  # the fixed part: select, filter without >ID, entityTypeId...
        self.rows_key = rows_key  # crm.stagehistory.list puts its rows under result.items
        self.position = after_id
        self.done = False
        self.failures = 0
        self.operating_waits = 0
        self.expected_rows: int | None = None  # rows still to read, when known (a full pass's landed rows)

    @property
    def expected_pages(self) -> int | None:
        """Pages still to read, the final short page included; None when unknown."""
        return None if self.expected_rows is None else max(0, self.expected_rows) // PAGE_SIZE + 1

    def commands(self, count: int) -> dict[str, str]:
        out: dict[str, str] = {}
        previous: str | None = None
        for i in range(count):
            key = f"{self.key}_{i}"
            bound: Any = self.position if previous is None else self._reference(previous)
            params = {
                **self.params,
                "filter": {**self.params.get("filter", {}), ">ID": bound},
                "order": {"ID": "ASC"},
                "start": -1,
            }
            out[key] = f"{self.method}?{encode(params)}"
            previous = key
        return out

    def _reference(self, key: str) -> str:
        inner = f"[{self.rows_key}]" if self.rows_key else ""
        return f"$result[{key}]{inner}[{PAGE_SIZE - 1}][ID]"

    def absorb(
        self, keys: list[str], answers: dict[str, CommandAnswer]
    ) -> tuple[StreamPage, CommandError | None]:
        """Take the contiguous prefix of good pages; return it and the error that stopped it."""
        start = position = self.position
        rows: list[Any] = []
        problem: CommandError | None = None
        done = False
        for index, key in enumerate(keys):
            answer = answers[key]
            if not answer.ran:
                problem = CommandError("", "the portal did not run the command")
                break
            if answer.error is not None:
                problem = answer.error
                break
            page = (
                answer.result.get(self.rows_key)
                if self.rows_key and isinstance(answer.result, dict)
                else answer.result
            )
            if not self.rows_key and answer.result == {}:
                page = []
            if not isinstance(page, list):
                problem = CommandError("", f"an answer that is not a list of rows ({type(page).__name__})")
                break
            ids = [i for i in (row_id(r) for r in page) if i is not None]
            if ids and min(ids) <= position:
                if index == 0:
                    problem = CommandError("", f"rows at or below ID {position} after filter >ID={position}")
                break  # a chained page that does not follow on: read it again next round
            rows.extend(page)
            if ids:
                position = max(ids)
            if len(page) < PAGE_SIZE:
                done = True
                break
            if not ids:
                raise ValueError(
                    f"{self.method} answered a full page without one readable ID after ID {position}"
                )
            if row_id(page[-1]) != position:
                break  # the next command started after the last row, whose ID is unreadable: read again
        self.position = position
        self.done = done
        if self.expected_rows is not None:
            self.expected_rows -= len(rows)
        return StreamPage(self, rows, start, None if done else position, done), problem


def share_slots(streams: list[KeysetStream], free: int) -> list[int]:
    """Commands per stream in one batch: one each, then -- when every stream knows how many
    pages it still needs -- to the neediest first, up to that need; otherwise evenly. Slots
    no stream needs are shared evenly too (a command past a stream's end costs no request)."""
    if not streams:
        return []
    counts = [1] * len(streams)
    left = free - len(streams)
    needs = [s.expected_pages for s in streams]
    if all(n is not None for n in needs):
        deficits = [n - 1 for n in needs]  # type: ignore[operator]
        while left > 0 and max(deficits, default=0) > 0:
            i = deficits.index(max(deficits))
            counts[i] += 1
            deficits[i] -= 1
            left -= 1
    for i in range(left):
        counts[i % len(streams)] += 1
    return counts


@dataclass
class Round:
    pages: list[StreamPage] = field(default_factory=list)
    answers: list[tuple[Call, CommandAnswer]] = field(default_factory=list)
    server_time: datetime | None = None
    commands: int = 0


class Planner:
    def __init__(self, client: Bitrix24Client, commands_per_batch: int = MAX_COMMANDS):
        if not 1 <= commands_per_batch <= MAX_COMMANDS:
            raise ValueError(f"commands_per_batch must be 1..{MAX_COMMANDS}")
        self.client = client
        self.capacity = commands_per_batch
        self.streams: list[KeysetStream] = []
        self.calls: deque[Call] = deque()
        self._seq = itertools.count()

    def add_stream(self, stream: KeysetStream) -> None:
        self.streams.append(stream)

    def add_call(self, call: Call) -> None:
        self.calls.append(call)

    @property
    def busy(self) -> bool:
        return bool(self.calls) or any(not s.done for s in self.streams)

    def rounds(self) -> Iterator[Round]:
        while self.busy:
            commands, chosen_calls, allocation = self._compose()
            answer = self.client.batch(commands)
            yield self._dispatch(commands, chosen_calls, allocation, answer.commands, answer.server_time)

    # -- composing ------------------------------------------------------------------------------
    def _compose(self) -> tuple[dict[str, str], dict[str, Call], dict[str, list[str]]]:
        pacer = self.client.pacer
        while True:
            streams = [s for s in self.streams if not s.done and pacer.held_until(s.method) is None]
            calls = [c for c in self.calls if pacer.held_until(c.method) is None]
            if streams or calls:
                break
            waiting = [s.method for s in self.streams if not s.done] + [c.method for c in self.calls]
            until = min(t for t in (pacer.held_until(m) for m in waiting) if t is not None)
            self.client.sleep(max(0.0, until - self.client.clock()))
        capacity = self.capacity
        streams = streams[:capacity]
        needs = [s.expected_pages for s in streams]
        if streams and all(n is not None for n in needs):
            # pages the streams are known to need come first: certain work, and the deals'
            # pages are what make comments due
            reserved = min(capacity, sum(max(1, n) for n in needs))  # type: ignore[type-var]
        else:
            reserved = len(streams)
        rooms: dict[str, int | None] = {}

        def take(method: str, wanted: int) -> int:
            """Commands of ``method`` this batch may still carry (its operating-time room)."""
            room = rooms[method] if method in rooms else pacer.room(method)
            granted = wanted if room is None else min(wanted, room)
            rooms[method] = None if room is None else room - granted
            return granted

        chosen: list[Call] = []
        for call in calls:
            if len(chosen) >= capacity - reserved:
                break
            if take(call.method, 1):
                chosen.append(call)
        for call in chosen:
            self.calls.remove(call)
        commands: dict[str, str] = {}
        chosen_calls: dict[str, Call] = {}
        for call in chosen:
            key = f"c{next(self._seq)}"
            commands[key] = call.command()
            chosen_calls[key] = call
        allocation: dict[str, list[str]] = {}
        for stream, count in zip(streams, share_slots(streams, capacity - len(chosen)), strict=True):
            count = take(stream.method, count)
            if count:
                stream_commands = stream.commands(count)
                commands.update(stream_commands)
                allocation[stream.key] = list(stream_commands)
        retried = max([c.failures for c in chosen] + [s.failures for s in streams], default=0)
        if retried:
            self.client.sleep(min(30.0, 0.5 * 2 ** (retried - 1)))
        return commands, chosen_calls, allocation

    # -- answers --------------------------------------------------------------------------------
    def _dispatch(
        self,
        commands: dict[str, str],
        chosen_calls: dict[str, Call],
        allocation: dict[str, list[str]],
        answers: dict[str, CommandAnswer],
        server_time: datetime | None,
    ) -> Round:
        result = Round(server_time=server_time, commands=len(commands))
        for key, call in chosen_calls.items():
            answer = answers[key]
            problem = answer.error if answer.ran else CommandError("", "the portal did not run the command")
            if problem is None:
                call.failures = 0
                result.answers.append((call, answer))
                continue
            self._judge(call.method, problem, call)
            self.calls.appendleft(call)
        by_key = {s.key: s for s in self.streams}
        for key, keys in allocation.items():
            stream = by_key[key]
            try:
                page, problem = stream.absorb(keys, answers)
            except ValueError as exc:
                raise ExtractError(self.client.connection, str(exc)) from None
            if page.rows or page.done or page.upto != page.after:
                result.pages.append(page)
            if problem is None:
                stream.failures = 0
            else:
                self._judge(stream.method, problem, stream)
        return result

    def _judge(self, method: str, problem: CommandError, item: Call | KeysetStream) -> None:
        """Count a failed command; fail the run when retrying cannot help or has not helped."""
        connection = self.client.connection
        if problem.code in CREDENTIAL_ERRORS:
            raise CredentialError(
                connection,
                f"the portal refused {method} to the incoming webhook ({problem}): give the webhook the crm "
                f"and user scopes and its user access to the CRM, or replace the webhook",
            )
        if problem.code in FATAL_ERRORS:
            raise ExtractError(connection, f"{method}: {problem} -- {FATAL_ERRORS[problem.code]}")
        if problem.code == "OPERATION_TIME_LIMIT":
            item.operating_waits += 1
            if item.operating_waits > MAX_OPERATING_WAITS:
                raise ExtractError(
                    connection,
                    f"{method} stayed blocked by the portal's operating-time limit through "
                    f"{MAX_OPERATING_WAITS} resets; another integration may be using it up",
                )
            return
        item.failures += 1
        if item.failures >= MAX_FAILURES:
            raise ExtractError(
                connection, f"{method} failed {item.failures} times in a row inside a batch: {problem}"
            )
