"""HTTP to one Bitrix24 portal through its incoming webhook: every call is a ``batch``.

``Bitrix24Client.batch(commands)`` sends up to 50 commands (``{"key": "method?query"}``) in
one request and returns each command's answer. Around it:

- the leaky bucket: a ``TokenBucketLimiter`` sized to the portal's published limit (a burst
  of 50, draining 2 requests per second; Enterprise 250 and 5), from the source config;
- retries (``ApiClient``): ``503 QUERY_LIMIT_EXCEEDED`` (the limiter is drained), other 5xx,
  timeouts, dropped connections, and a ``200`` whose body is not JSON (big batches sometimes
  answer ``text/html``) or has no ``result``;
- the operating-time limit: each method's execution time summed over 10 minutes (480 s on
  cloud portals). Every answer reports it (``time.operating``, ``time.operating_reset_at``),
  the batch's own and each command's; ``OperatingPacer`` keeps the last figures per method
  and holds a method back until its reset when it nears the budget, and a ``429
  OPERATION_TIME_LIMIT`` waits until the announced reset before the retry;
- auth: the webhook URL carries its secret in the path. It is never printed: ``ApiClient``
  redacts ``/rest/<user>/<code>/`` in its messages and this module never shows the URL.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from extractors.common.errors import CredentialError
from extractors.common.http import ApiError, Response
from extractors.common.source_client import SourceClient

PAGE_SIZE = 50  # rows per list call: fixed by the portal
MAX_COMMANDS = 50  # commands per batch: more is 400 ERROR_BATCH_LENGTH_EXCEEDED
OPERATING_BUDGET = 480.0  # seconds of execution time per method in a 10-minute window
WEBHOOK_PATH = re.compile(r"^/rest/[^/]+/[^/]+/?$")
WEBHOOK_SECRET = re.compile(r"(/rest/[^/\s]+/)[^/\s]+/")


class RedactWebhooks(logging.Filter):
    """httpx logs every request's URL at INFO: hide the webhook code in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any("/rest/" in str(a) for a in record.args):
            record.args = tuple(
                WEBHOOK_SECRET.sub(r"\1***/", str(a)) if "/rest/" in str(a) else a for a in record.args
            )
        if isinstance(record.msg, str) and "/rest/" in record.msg:
            record.msg = WEBHOOK_SECRET.sub(r"\1***/", record.msg)
        return True


def _redact_http_logs() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactWebhooks) for f in logger.filters):
            logger.addFilter(RedactWebhooks())


@dataclass(frozen=True)
class CommandError:
    code: str
    description: str

    def __str__(self) -> str:
        return f"{self.code or 'an error without a code'}: {self.description}"


@dataclass
class CommandAnswer:
    """One command's part of a batch answer. ``error`` is None for a success; a command
    missing from both ``result`` and ``result_error`` was not run (``ran`` False)."""

    result: Any = None
    total: int | None = None
    next: int | None = None
    error: CommandError | None = None
    ran: bool = True


@dataclass
class BatchAnswer:
    commands: dict[str, CommandAnswer]
    server_time: datetime | None  # the portal's clock when it started the batch


def encode(params: Mapping[str, Any]) -> str:
    """Parameters as the PHP query string of a batch command:
    ``{"filter": {">ID": 5}, "select": ["*"]}`` -> ``filter%5B%3EID%5D=5&select%5B0%5D=%2A``."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif value is None:
            pairs.append((prefix, ""))
        elif isinstance(value, bool):
            pairs.append((prefix, "Y" if value else "N"))
        else:
            pairs.append((prefix, str(value)))

    walk("", params)
    return urlencode(pairs)


class OperatingPacer:
    """The portal's operating-time limit, per method, from what its answers report.

    ``observe`` records a method's ``time.operating`` (seconds used in the window, a running
    total) and ``time.operating_reset_at`` (a Unix time, turned into this process's clock
    through the answer's own ``time.start``: a reset is never expected early); consecutive totals within one batch give the
    largest cost one command of the method has added (its *step*; across batches the total
    also moves with other clients and the sliding window). The pacer keeps each method a tenth
    of the budget short of it:

    - ``room(method)``: how many more commands of the method fit (None: no figures yet);
    - ``held_until(method)``: when not even one fits, the reset time to wait for. Past the
      reset the figures are stale (part of the window was released): one command is let
      through, and its answer tells how much is left.
    """

    def __init__(self, budget: float, clock: Callable[[], float], headroom: float = 0.1):
        self.budget = budget
        self.clock = clock
        self.threshold = budget * (1 - headroom)
        self._used: dict[str, float] = {}
        self._reset: dict[str, float] = {}
        self._step: dict[str, float] = {}
        self._offset: float | None = None  # portal Unix time minus our clock
        self._seen_in: dict[str, int] = {}  # method -> the batch its last figure came from
        self.refusals = 0  # commands the portal refused for their operating time

    def observe(self, method: str, block: Any, batch: int = 0) -> None:
        if not isinstance(block, Mapping):
            return
        start = _number(block.get("start"))
        if start is not None:
            self._offset = start - self.clock()
        used = _number(block.get("operating"))
        if used is not None:
            if self._seen_in.get(method) == batch and method in self._used:
                step = used - self._used[method]
                self._step[method] = max(self._step.get(method, 0.0), step)
            self._used[method] = used
            self._seen_in[method] = batch
        reset = _number(block.get("operating_reset_at"))
        if reset is not None and self._offset is not None:
            self._reset[method] = reset - self._offset
        if self.room(method) == 1 and self._reset.get(method, 0.0) <= self.clock():
            # near the budget and no reset ahead: do not probe again at once, look in a while
            self._reset[method] = self.clock() + 5.0

    def blocked(self, method: str) -> None:
        """The portal refused ``method`` for its operating time: it is spent until the reset."""
        self.refusals += 1
        self._used[method] = self.budget
        if self._reset.get(method, 0.0) <= self.clock():
            self._reset[method] = self.clock() + 60.0  # no reset announced: look again in a minute

    def room(self, method: str) -> int | None:
        used, step = self._used.get(method), self._step.get(method, 0.0)
        if used is None:
            return None
        spare = self.threshold - used
        if spare >= step:
            return None if step <= 0 else int(spare // step)
        return 0 if self._reset.get(method, 0.0) > self.clock() else 1

    def held_until(self, method: str) -> float | None:
        """Our clock time until which ``method`` should not be called, or None."""
        return self._reset[method] + 1.0 if self.room(method) == 0 else None

    def wait_seconds(self, method: str) -> float:
        until = self.held_until(method)
        return 0.0 if until is None else max(0.0, until - self.clock())

    @property
    def used(self) -> dict[str, float]:
        return dict(self._used)


class Bitrix24Client(SourceClient):
    def __init__(
        self,
        connection: str,
        webhook_url: str,
        webhook_env_var: str,
        *,
        requests_per_second: float,
        burst: int,
        timeout: float = 60.0,
        operating_budget: float = OPERATING_BUDGET,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
    ):
        super().__init__(
            connection,
            timeout=timeout,
            requests_per_second=requests_per_second,
            burst=burst,
            clock=clock,
            sleep=sleep,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
        )
        self._env_var = webhook_env_var
        split = urlsplit(webhook_url)
        if split.scheme not in ("http", "https") or not WEBHOOK_PATH.match(split.path):
            # never echo the value: it is the secret
            raise CredentialError(
                connection,
                f"the environment variable {webhook_env_var} does not hold an incoming webhook URL of the form "
                "https://<portal>/rest/<user id>/<code>/",
            )
        self._endpoint = webhook_url.rstrip("/") + "/batch"
        _redact_http_logs()
        self.clock, self.sleep = clock, sleep
        self.api = self.http_client()
        self.api.retry_delay = self._retry_delay
        self.pacer = OperatingPacer(operating_budget, clock)
        self._batches = 0

    # -- one request ----------------------------------------------------------------------------
    def batch(self, commands: Mapping[str, str]) -> BatchAnswer:
        """Run ``commands`` (key -> ``"method?query"``) in one request, in their order."""
        if not 0 < len(commands) <= MAX_COMMANDS:
            raise ValueError(f"a batch holds 1 to {MAX_COMMANDS} commands, got {len(commands)}")
        wait = self.pacer.wait_seconds("batch")
        if wait > 0:
            self.sleep(wait)
        try:
            response = self.api.request(
                "POST", self._endpoint, json_body={"halt": 0, "cmd": dict(commands)}, is_valid=_batch_shape
            )
        except CredentialError as exc:
            raise CredentialError(
                self.connection,
                f"the portal refused the incoming webhook ({_error_code(str(exc)) or 'HTTP 401'}): it was "
                f"deleted, or the URL in {self._env_var} is wrong. Create an incoming webhook in Bitrix24 "
                f"(Developer resources > Other > Incoming webhook) with the crm and user scopes and put its "
                f"URL in {self._env_var}.",
            ) from None
        except ApiError as exc:
            if exc.status == 403:
                raise CredentialError(
                    self.connection,
                    f"the portal denied the incoming webhook ({_error_code(str(exc)) or 'HTTP 403'}): give the "
                    f"webhook's user access to the CRM and the webhook the crm and user scopes, or put a new "
                    f"webhook's URL in {self._env_var}.",
                ) from None
            raise
        return self._answer(commands, response.data)

    def _answer(self, commands: Mapping[str, str], body: dict[str, Any]) -> BatchAnswer:
        inner = body["result"]
        results, errors = _as_map(inner.get("result")), _as_map(inner.get("result_error"))
        totals, nexts = _as_map(inner.get("result_total")), _as_map(inner.get("result_next"))
        times = _as_map(inner.get("result_time"))
        self._batches += 1
        self.pacer.observe("batch", body.get("time"), self._batches)
        answers: dict[str, CommandAnswer] = {}
        for key, command in commands.items():
            method = command.partition("?")[0].strip().lower()
            self.pacer.observe(method, times.get(key), self._batches)
            if key in errors:
                raw = errors[key]
                error = (
                    CommandError(str(raw.get("error") or ""), str(raw.get("error_description") or ""))
                    if isinstance(raw, Mapping)
                    else CommandError("", str(raw))
                )
                if error.code == "OPERATION_TIME_LIMIT":
                    self.pacer.blocked(method)
                answers[key] = CommandAnswer(error=error)
            elif key in results:
                answers[key] = CommandAnswer(
                    result=results[key], total=_int(totals.get(key)), next=_int(nexts.get(key))
                )
            else:
                answers[key] = CommandAnswer(ran=False)
        started = (body.get("time") or {}).get("date_start") if isinstance(body.get("time"), dict) else None
        return BatchAnswer(answers, _instant(started))

    def _retry_delay(self, status: int, text: str) -> float | None:
        """A ``429 OPERATION_TIME_LIMIT`` on the batch itself: wait for the announced reset."""
        if status == 429 and "OPERATION_TIME_LIMIT" in text:
            self.pacer.blocked("batch")
            return max(1.0, self.pacer.wait_seconds("batch"))
        return None


def _batch_shape(response: Response) -> str | None:
    body = response.data
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("result"), dict)
        or "result" not in body["result"]
    ):
        return f"a batch answer without result.result: {_short(response.text)}"
    return None


def _as_map(part: Any) -> dict[str, Any]:
    """A batch part: an object keyed by command, or ``[]`` (PHP's empty array), or a list when
    the keys happen to be 0..n-1."""
    if isinstance(part, Mapping):
        return {str(k): v for k, v in part.items()}
    if isinstance(part, list):
        return {str(i): v for i, v in enumerate(part)}
    return {}


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _error_code(message: str) -> str | None:
    try:
        start = message.index("{")
        return str(json.loads(message[start : message.rindex("}") + 1]).get("error")) or None
    except (ValueError, AttributeError):
        match = re.search(r'"error"\s*:\s*"([A-Za-z_]+)"', message)
        return match.group(1) if match else None


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
