"""An asyncio event loop on a ``HybridClock``: waiting is free, work and I/O are not.

The loop's ``time()`` is the hybrid clock. When every coroutine is asleep (no HTTP request in
flight, the selector would only wait for a timer), the clock jumps to the next timer instead
of sleeping. A request in flight is real I/O and is waited for in real time. Concurrent sleeps
overlap as they would in reality (the clock jumps once to the earliest wake-up), so a client
that sends many requests at once, like ``fast_bitrix24``, is timed as it would run.
"""

from __future__ import annotations

import asyncio
import selectors
from types import SimpleNamespace
from typing import Any

import aiohttp

from benchmarks.common import HybridClock


class InFlight:
    """Counts HTTP requests between being sent and having their whole body read."""

    def __init__(self) -> None:
        self.count = 0

    def session(self, **options: Any) -> aiohttp.ClientSession:
        inflight = self

        class CountingSession(aiohttp.ClientSession):
            async def _request(self, *args: Any, **kwargs: Any) -> aiohttp.ClientResponse:  # type: ignore[override]
                inflight.count += 1
                try:
                    response = await super()._request(*args, **kwargs)
                    await response.read()  # the body too: the clock must not jump mid-answer
                    return response
                finally:
                    inflight.count -= 1

        return CountingSession(**options)


class _Selector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, clock: HybridClock, inflight: InFlight):
        super().__init__()
        self._clock, self._inflight = clock, inflight

    def select(self, timeout: float | None = None) -> Any:
        if timeout is not None and timeout > 0 and self._inflight.count == 0:
            self._clock.sleep(timeout)  # nothing on the wire: skip straight to the next timer
            timeout = 0
        return super().select(timeout)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: HybridClock, inflight: InFlight):
        super().__init__(selector=_Selector(clock, inflight))
        self._hybrid = clock

    def time(self) -> float:
        return self._hybrid.now()


def monotonic_shim(clock: HybridClock) -> SimpleNamespace:
    """A stand-in for the ``time`` module where a library reads ``time.monotonic()``."""
    return SimpleNamespace(monotonic=clock.now, time=clock.now)
