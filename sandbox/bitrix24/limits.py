"""Bitrix24's resource limit: each method's execution time, summed over a sliding window.

The cloud portal adds up the time every call of a method took over the last 10 minutes;
past 480 s the method answers ``429 OPERATION_TIME_LIMIT`` (other methods keep working)
until old calls leave the window. Every answer reports the sum as ``time.operating`` and
when part of it is released as ``time.operating_reset_at``.

Here the execution time is simulated (``CostModel``): a fixed part per call, a part per
row returned, and, for list calls that count their total (``start`` >= 0), a part per
matching row -- which is why the documented ``start=-1`` paging is cheaper.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    per_call: float = 0.02
    per_row: float = 0.002
    per_counted_row: float = 0.0002

    def cost(self, rows: int = 0, counted: int = 0) -> float:
        return self.per_call + self.per_row * rows + self.per_counted_row * counted


class OperatingLedger:
    """Per-method execution time over a sliding window, on an injectable clock."""

    def __init__(
        self, budget: float = 480.0, window: float = 600.0, clock: Callable[[], float] | None = None
    ):
        import time

        self.budget, self.window = budget, window
        self.clock = clock or time.monotonic
        self._calls: dict[str, deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def _trim(self, method: str, now: float) -> deque[tuple[float, float]]:
        calls = self._calls.setdefault(method, deque())
        while calls and calls[0][0] <= now - self.window:
            calls.popleft()
        return calls

    def used(self, method: str) -> float:
        with self._lock:
            return sum(cost for _, cost in self._trim(method, self.clock()))

    def blocked(self, method: str) -> bool:
        return self.used(method) >= self.budget

    def add(self, method: str, cost: float) -> None:
        with self._lock:
            now = self.clock()
            self._trim(method, now).append((now, cost))

    def reset_at(self, method: str) -> float:
        """When (on the ledger's clock) the oldest call in the window leaves it."""
        with self._lock:
            now = self.clock()
            calls = self._trim(method, now)
            return (calls[0][0] if calls else now) + self.window
