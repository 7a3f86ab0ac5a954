"""A client-side rate limiter sized to an API's published limit.

Two shapes, one protocol (``acquire`` before a request, ``done`` when its answer is in,
``drain`` when the server said "too fast"), driven by ``ApiClient``:

- ``TokenBucketLimiter``: ``burst`` requests may go at once, then ``rate`` per second.
  Bitrix24's leaky bucket is ``rate=2, burst=50``, exactly the server's own bucket.
- ``SlidingWindowLimiter``: never more than N requests in any window, whatever the network's
  delays: amoCRM's "7 per second". (A token bucket of 7/s with a burst of 7 lets 13 into one
  second: 7 at once and 6 refilled.) The clock and the sleep are injectable so a
benchmark can compress time, as long as the limiter and the server share the clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    waited: float

    def acquire(self) -> None: ...

    def done(self) -> None: ...

    def drain(self) -> None: ...


class TokenBucketLimiter:
    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        safety: float = 0.98,
    ):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate * safety  # a hair under the published limit: clocks differ
        self.burst = float(burst)
        self.clock, self.sleep = clock, sleep
        self._level = self.burst
        self._at = clock()
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, for the run's statistics

    def _refill(self) -> None:
        now = self.clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now

    def acquire(self) -> None:
        """Block until one request may be sent."""
        with self._lock:
            self._refill()
            if self._level < 1:
                wait = (1 - self._level) / self.rate
                self.sleep(wait)
                self.waited += wait
                self._refill()
                self._level = max(self._level, 1.0)  # we waited exactly as long as needed
            self._level -= 1

    def done(self) -> None:
        """A bucket counts requests as they leave; their answers do not matter."""

    def drain(self) -> None:
        """The server said we went too fast: assume the bucket is empty."""
        with self._lock:
            self._level = 0.0
            self._at = self.clock()


class SlidingWindowLimiter:
    """Never more than N requests in any window of N / rate seconds, kept by construction.

    amoCRM counts requests per account as they arrive and answers 429 past 7 per second; an
    account that keeps doing it gets every call answered 403 until support unblocks it. A token
    bucket with a burst of 7 lets up to 13 requests into one second (7 at once, 6 refilled), so
    it is not enough. This limiter keeps the *completion* times of the last N requests and sends
    the next one only when the oldest of them finished at least one window ago. A request
    arrives at the server somewhere between being sent and being answered, so for any N + 1
    consecutive requests the first arrived before it was answered and the last after it was
    sent, at least a window later: at most N arrive in any window, whatever the network's delays.

    One caller at a time (the HTTP client sends one request after another): ``acquire`` before a
    request, ``done`` once its answer is in. A request never marked ``done`` counts as finished
    when the next ``acquire`` comes, which is later than it really finished: safe, only slower.
    """

    def __init__(
        self,
        requests_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.02,
    ):
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be > 0")
        self.limit = max(1, math.floor(requests_per_second))
        # 3.5/s is 3 per 0.857 s; 7/s is 7 per second; the margin absorbs clock granularity
        self.window = self.limit / requests_per_second * (1 + margin)
        self.clock, self.sleep = clock, sleep
        self._finished: deque[float] = deque(maxlen=self.limit)
        self._in_flight = False
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting, for the run's statistics

    def _finish(self, now: float) -> None:
        if self._in_flight:
            self._finished.append(now)
            self._in_flight = False

    def acquire(self) -> None:
        """Block until one more request may be sent."""
        with self._lock:
            now = self.clock()
            self._finish(now)
            if len(self._finished) == self.limit:
                wait = self._finished[0] + self.window - now
                if wait > 0:
                    self.sleep(wait)
                    self.waited += wait
            self._in_flight = True

    def done(self) -> None:
        """The answer to the request last acquired for is in."""
        with self._lock:
            self._finish(self.clock())

    def drain(self) -> None:
        """The server said we went too fast: wait a whole window before the next request."""
        with self._lock:
            now = self.clock()
            self._in_flight = False
            self._finished.extend([now] * self.limit)
