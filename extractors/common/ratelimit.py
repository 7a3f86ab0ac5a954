"""A client-side rate limiter sized to an API's published limit.

A token bucket: ``burst`` requests may go at once, then ``rate`` per second. amoCRM is
``TokenBucketLimiter(rate=7, burst=1)``: evenly spaced, so never more than 7 in any one-second
window (a burst of 7 would allow up to 13 in a window straddling the refill); Bitrix24's leaky
bucket is ``rate=2, burst=50``, exactly the server's own bucket. The clock and the sleep are injectable so a
benchmark can compress time, as long as the limiter and the server share the clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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

    def drain(self) -> None:
        """The server said we went too fast: assume the bucket is empty."""
        with self._lock:
            self._level = 0.0
            self._at = self.clock()
