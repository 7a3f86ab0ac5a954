"""What every API stand-in shares: a threaded HTTP server on loopback, deterministic faults,
and a log of the requests it saw (so tests can measure the rate a client kept to).

A stand-in subclasses ``StandIn`` and implements ``handle``; it never imports anything
from ``extractors/``. Rate limits are each stand-in's own business (each API limits
differently); ``TokenBucket`` below is the shared building block.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

LOOPBACK = "127.0.0.1"


@dataclass
class Request:
    method: str
    path: str  # without the query string, percent-decoded
    query: list[tuple[str, str]]  # in order, repeated keys kept
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # the stand-in's clock when it arrived

    def arg(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return default

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)  # one Set-Cookie header each

    @classmethod
    def json(cls, status: int, payload: Any, content_type: str = "application/json") -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, content_type)


@dataclass
class Faults:
    """Faults on demand, deterministic by ``seed`` and the request's sequence number.

    Rates are shares of requests (0..1). A burst answers ``burst_length`` consecutive
    requests with the API's own rate-limit error, starting every ``burst_every`` requests.
    """

    seed: int = 0
    error_rate: float = 0.0  # 5xx answers
    slow_rate: float = 0.0  # answers delayed by slow_seconds
    slow_seconds: float = 0.5
    truncate_rate: float = 0.0  # a 200 whose JSON body is cut in half
    drop_rate: float = 0.0  # the connection closed with no answer
    burst_every: int = 0  # 0: no bursts
    burst_length: int = 3
    expire_token_after: int = 0  # 0: never; else the access token dies after N requests

    @classmethod
    def from_spec(cls, spec: str, seed: int = 0) -> Faults:
        """``"error_rate=0.05,burst_every=40,truncate_rate=0.01"`` -> Faults."""
        faults = cls(seed=seed)
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            if not hasattr(faults, key) or key == "seed":
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(FAULT_NAMES)}")
            kind = type(getattr(faults, key))
            setattr(faults, key, kind(value))
        return faults

    @property
    def any(self) -> bool:
        return any(getattr(self, n) for n in FAULT_NAMES)


FAULT_NAMES = [n for n in Faults.__dataclass_fields__ if n not in ("seed", "slow_seconds", "burst_length")]


class StandIn:
    """Base of every API stand-in. Subclasses implement ``handle``."""

    name = "stand-in"

    def __init__(self, faults: Faults | None = None, clock: Callable[[], float] = time.monotonic):
        self.faults = faults or Faults()
        self.clock = clock
        self.lock = threading.RLock()
        self.log: list[Request] = []  # every request seen, faults included
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to implement -------------------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def rate_limit_error(self) -> Response:
        """The API's own answer to a burst fault (429 or 503, the API's shape)."""
        return Response(429, b"Too Many Requests", "text/plain")

    def server_error(self) -> Response:
        return Response(500, b"<html><body>500 Internal Server Error</body></html>", "text/html")

    # -- serving ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> str:
        """Serve on 127.0.0.1 (``port=0``: a free one) in a daemon thread; return the URL."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stall

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                standin._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def max_requests_in_window(self, seconds: float) -> int:
        """The most requests seen in any window of ``seconds`` (for limiter tests)."""
        times = sorted(r.at for r in self.log)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # -- internals ----------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        split = urlsplit(h.path)
        request = Request(
            method=h.command,
            path=unquote(split.path),
            query=parse_qsl(split.query, keep_blank_values=True),
            raw_query=split.query,
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
            at=self.clock(),
        )
        with self.lock:
            self._seq += 1
            seq = self._seq
            self.log.append(request)
        rng = random.Random(self.faults.seed * 1_000_003 + seq)
        f = self.faults
        if f.drop_rate and rng.random() < f.drop_rate:
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        if f.slow_rate and rng.random() < f.slow_rate:
            time.sleep(f.slow_seconds)
        if f.burst_every and seq % f.burst_every < f.burst_length and seq > f.burst_length:
            response = self.rate_limit_error()
        elif f.error_rate and rng.random() < f.error_rate:
            response = self.server_error()
        else:
            try:
                response = self.handle(request)
            except Exception as exc:  # a stand-in bug must be visible, not a hang
                response = Response.json(500, {"error": "STANDIN_BUG", "detail": repr(exc)})
            if f.truncate_rate and response.status == 200 and rng.random() < f.truncate_rate:
                response = Response(200, response.body[: len(response.body) // 2], response.content_type)
        self._write(h, response)

    @staticmethod
    def _write(h: BaseHTTPRequestHandler, response: Response) -> None:
        h.send_response(response.status)
        if response.status != 204:
            h.send_header("Content-Type", response.content_type + "; charset=utf-8")
        h.send_header("Content-Length", str(len(response.body)))
        for k, v in response.headers.items():
            h.send_header(k, v)
        for cookie in response.cookies:
            h.send_header("Set-Cookie", cookie)
        h.end_headers()
        if response.body:
            h.wfile.write(response.body)


class TokenBucket:
    """A leaky bucket on a given clock: ``capacity`` requests, refilled at ``rate`` per second."""

    def __init__(self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic):
        self.capacity, self.rate, self.clock = capacity, rate, clock
        self.level = capacity
        self.at = clock()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = self.clock()
            self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
            self.at = now
            if self.level >= 1:
                self.level -= 1
                return True
            return False
