"""amoCRM's request limits: at most N requests in any one-second window per account, and an
account that keeps hitting the limit gets blocked."""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """Admits at most ``limit`` events in any window of ``seconds`` (times from one clock,
    never decreasing). Unlike a token bucket it never lets ``limit + 1`` through a window that
    straddles a refill, so "no more than 7 per second" holds for every window."""

    def __init__(self, limit: int, seconds: float = 1.0):
        self.limit = limit
        self.seconds = seconds
        self._times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        while self._times and now - self._times[0] >= self.seconds:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def clear(self) -> None:
        self._times.clear()


class AbuseGuard:
    """Counts refused requests; more than ``threshold`` refusals within ``seconds`` blocks the
    account until ``clear``."""

    def __init__(self, threshold: int, seconds: float = 60.0):
        self.threshold = threshold
        self.seconds = seconds
        self.blocked = False
        self._refusals: deque[float] = deque()

    def refused(self, now: float) -> None:
        self._refusals.append(now)
        while self._refusals and now - self._refusals[0] >= self.seconds:
            self._refusals.popleft()
        if len(self._refusals) > self.threshold:
            self.blocked = True

    def clear(self) -> None:
        self.blocked = False
        self._refusals.clear()
