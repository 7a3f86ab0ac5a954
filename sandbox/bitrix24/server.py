"""A local stand-in of one Bitrix24 portal's REST API, reached through an incoming webhook.

``http://127.0.0.1:<port>/rest/<user_id>/<code>/<method>[.json]`` -- POST with a JSON body,
or a form body, or query parameters (PHP-style ``filter[>ID]=5``), as the portal accepts.
It serves the world's state at the moment of each request, with the portal's limits:

- a leaky bucket per portal: a burst of 50 requests, draining 2 per second; past it
  ``503 QUERY_LIMIT_EXCEEDED``. A ``batch`` is one request, whatever it holds;
- the operating-time limit per method (see ``limits``): ``429 OPERATION_TIME_LIMIT``;
- ``batch`` of at most 50 commands (more: ``400 ERROR_BATCH_LENGTH_EXCEEDED``).
  A command may use earlier commands' answers (``$result[key][49][ID]``, see ``references``).

Faults on demand (``Faults``): bursts of ``503 QUERY_LIMIT_EXCEEDED``, 5xx answers (a JSON
500 or a gateway's HTML 502), slow answers, truncated JSON, dropped connections; and the
portal's own oddity: a big batch answering ``200 text/html`` instead of JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from sandbox.bitrix24.limits import CostModel, OperatingLedger
from sandbox.bitrix24.methods import METHODS, MethodResult
from sandbox.bitrix24.query import ApiError, param, parse_php_query, php_array
from sandbox.bitrix24.references import substitute
from sandbox.bitrix24.render import Portal, instant
from sandbox.standin import Faults, Request, Response, StandIn, TokenBucket
from sandbox.world.model import World

WEBHOOK_USER_ID = "1"
BURST = 50
DRAIN_PER_SECOND = 2.0
MAX_BATCH = 50
BIG_BATCH = 20  # batches at least this long may answer text/html under faults

HTML_BATCH_PAGE = (
    b"<!DOCTYPE html><html><head><title>Bitrix24</title></head><body>"
    b"<h1>The service is temporarily unavailable</h1><p>Please try again later.</p></body></html>"
)
BAD_GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"


def webhook_code(seed: int, source_name: str) -> str:
    """The webhook's secret: 16 characters, fixed by the seed and the connection name."""
    return hashlib.sha256(f"bitrix24-webhook|{source_name}|{seed}".encode()).hexdigest()[:16]


class Bitrix24StandIn(StandIn):
    """One Bitrix24 portal (``source_name``'s part of ``world``) behind an incoming webhook."""

    name = "bitrix24"

    def __init__(
        self,
        world: World,
        source_name: str,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        operating_budget: float = 480.0,
        operating_window: float = 600.0,
        costs: CostModel | None = None,
        html_batch_rate: float | None = None,
    ):
        super().__init__(faults=faults, clock=clock)
        self.world = world
        self.source_name = source_name
        self.code = webhook_code(world.seed, source_name)
        self.bucket = TokenBucket(BURST, DRAIN_PER_SECOND, clock)
        self.operating = OperatingLedger(operating_budget, operating_window, clock)
        self.costs = costs or CostModel()
        # None: big batches fail as HTML as often as other requests fail with 5xx
        self.html_batch_rate = self.faults.error_rate if html_batch_rate is None else html_batch_rate
        self.accepted_at: list[float] = []  # clock times of requests the leaky bucket let in
        self._epoch = time.time() - clock()
        self._portal: Portal | None = None
        self._portal_as_of: tuple[object, ...] | None = None
        self._batches = 0
        self._server_errors = 0

    # -- what a client is given ------------------------------------------------------------
    @property
    def webhook_url(self) -> str:
        return f"{self.url}/rest/{WEBHOOK_USER_ID}/{self.code}/"

    def credentials(self) -> dict[str, str]:
        """The environment a client needs: ``{"B24_WHOLESALE_WEBHOOK": "http://.../rest/1/<code>/"}``."""
        return {f"{self.source_name.upper()}_WEBHOOK": self.webhook_url}

    def invalidate(self) -> None:
        """Drop the rendered portal (the world changed without its clock moving)."""
        with self.lock:
            self._portal_as_of = None

    def portal(self) -> Portal:
        """The portal as of the world's current state. Rendered once per world version
        (``world.now`` and the number of deals: ``sandbox.world.advance`` moves the clock, and
        whoever changes the world holds ``self.lock``), as a portal keeps its tables, not once
        per request; its lists' orderings are kept with it."""
        with self.lock:
            version = (self.world.now, len(self.world.deals))
            if self._portal is None or version != self._portal_as_of:
                self._portal, self._portal_as_of = Portal(self.world, self.source_name), version
            return self._portal

    # -- the portal's error answers ----------------------------------------------------------
    def rate_limit_error(self) -> Response:
        return Response.json(503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})

    def server_error(self) -> Response:
        with self.lock:
            self._server_errors += 1
            odd = self._server_errors % 2 == 1
        if odd:
            return Response.json(
                500, {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"}
            )
        return Response(502, BAD_GATEWAY_PAGE, "text/html")

    # -- serving -----------------------------------------------------------------------------
    @staticmethod
    def _write(h: BaseHTTPRequestHandler, response: Response) -> None:
        # headers and body leave in two writes: without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK hold every keep-alive answer back by ~40 ms
        with contextlib.suppress(OSError):
            h.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        StandIn._write(h, response)

    def handle(self, request: Request) -> Response:
        try:
            method = self._authorise(request.path)
            if not self.bucket.take():
                return self.rate_limit_error()
            with self.lock:
                self.accepted_at.append(request.at)
            params = self._params(request)
            if method == "batch":
                return self._batch(params)
            if method not in METHODS:
                raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
            started = self.clock()
            with self.lock:
                portal = self.portal()
                outcome = self._call(portal, method, params)
            return Response.json(200, self._envelope(method, outcome, started))
        except ApiError as error:
            return Response.json(error.status, error.payload())

    def _authorise(self, path: str) -> str:
        """The method named by a webhook path, or the portal's authorisation error."""
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "rest":
            raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        rest = list(parts[2:])
        if rest and rest[-1] == "":
            rest = rest[:-1]
        if len(rest) == 1:  # /rest/<method>: no webhook, no token
            raise ApiError(401, "NO_AUTH_FOUND", "Wrong authorization data")
        if len(rest) < 2:
            raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        user_id, code = rest[0], rest[1]
        if user_id != WEBHOOK_USER_ID or code != self.code:
            raise ApiError(401, "INVALID_CREDENTIALS", "Invalid request credentials")
        if len(rest) != 3:
            raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        method = rest[2]
        for suffix in (".json", ".xml"):
            if method.endswith(suffix):
                method = method[: -len(suffix)]
        return method.lower()

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        params = parse_php_query(request.raw_query)
        body = request.body.strip()
        if not body:
            return params
        content_type = request.headers.get("content-type", "")
        if "json" in content_type or body.startswith(b"{"):
            try:
                decoded = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "", "Request body is not valid JSON.") from None
            if not isinstance(decoded, dict):
                raise ApiError(400, "", "Request body must be a JSON object.")
            params.update(decoded)
        elif "multipart/form-data" not in content_type:
            params.update(parse_php_query(body.decode("utf-8", errors="replace")))
        return params

    def _call(self, portal: Portal, method: str, params: Mapping[str, Any]) -> MethodResult:
        """Run one method against the operating-time limit; its cost goes to the ledger."""
        if self.operating.blocked(method):
            raise ApiError(429, "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.")
        outcome = METHODS[method](portal, params)
        self.operating.add(method, self.costs.cost(outcome.rows, outcome.counted))
        return outcome

    def _time(self, method: str, started: float, processing: float) -> dict[str, Any]:
        start = self._epoch + started
        duration = processing + 0.001
        return {
            "start": round(start, 6),
            "finish": round(start + duration, 6),
            "duration": round(duration, 6),
            "processing": round(processing, 6),
            "date_start": instant(datetime.fromtimestamp(start, tz=UTC)),
            "date_finish": instant(datetime.fromtimestamp(start + duration, tz=UTC)),
            "operating_reset_at": int(self._epoch + self.operating.reset_at(method)),
            "operating": round(self.operating.used(method), 6),
        }

    def _envelope(self, method: str, outcome: MethodResult, started: float) -> dict[str, Any]:
        body: dict[str, Any] = {"result": outcome.result}
        if outcome.total is not None:
            body["total"] = outcome.total
        if outcome.next is not None:
            body["next"] = outcome.next
        body["time"] = self._time(method, started, self.costs.cost(outcome.rows, outcome.counted))
        return body

    # -- batch -------------------------------------------------------------------------------
    def _batch(self, params: Mapping[str, Any]) -> Response:
        raw = param(params, "cmd")
        if isinstance(raw, list):
            commands = {str(i): c for i, c in enumerate(raw)}
        elif isinstance(raw, dict):
            commands = {str(k): c for k, c in raw.items()}
        else:
            commands = {}
        if len(commands) > MAX_BATCH:
            raise ApiError(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        halt = str(param(params, "halt", "0")).lower() in ("1", "true", "y")
        with self.lock:
            self._batches += 1
            number = self._batches
        if len(commands) >= BIG_BATCH and self.html_batch_rate:
            rng = random.Random(self.faults.seed * 7_919 + number)
            if rng.random() < self.html_batch_rate:
                return Response(200, HTML_BATCH_PAGE, "text/html")
        started = self.clock()
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        processing = 0.0
        parts = {"result": results, "error": errors, "total": totals, "next": nexts, "time": times}
        with self.lock:
            portal = self.portal()
            for key, command in commands.items():
                began = self.clock()
                try:
                    method, _, query = str(command).partition("?")
                    method = method.strip().lower()
                    if method == "batch":
                        raise ApiError(
                            405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage"
                        )
                    if method not in METHODS:
                        raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
                    outcome = self._call(portal, method, substitute(parse_php_query(query), parts))
                except ApiError as error:
                    errors[key] = error.payload()
                    if halt:
                        break
                    continue
                cost = self.costs.cost(outcome.rows, outcome.counted)
                processing += cost
                results[key] = outcome.result
                if outcome.total is not None:
                    totals[key] = outcome.total
                if outcome.next is not None:
                    nexts[key] = outcome.next
                times[key] = self._time(method, began, cost)
            self.operating.add("batch", self.costs.per_call)
        body = {
            "result": {
                "result": php_array(results),
                "result_error": php_array(errors),
                "result_total": php_array(totals),
                "result_next": php_array(nexts),
                "result_time": php_array(times),
            },
            "time": self._time("batch", started, processing + self.costs.per_call),
        }
        return Response.json(200, body)
