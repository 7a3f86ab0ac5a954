"""The limiter on a fake clock: it never lets more through than the published limit."""

from __future__ import annotations

from extractors.common.ratelimit import TokenBucketLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def sent_times(limiter: TokenBucketLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire()
        times.append(clock.now)
    return times


def max_in_window(times: list[float], window: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_a_burst_as_large_as_the_rate_would_break_a_per_second_limit() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=7, burst=7, clock=clock, sleep=clock.sleep)
    assert max_in_window(sent_times(limiter, clock, 70), 1.0) > 7, "why amoCRM's limiter has burst 1"


def test_amocrm_shape_never_exceeds_seven_in_any_second() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=7, burst=1, clock=clock, sleep=clock.sleep)
    times = sent_times(limiter, clock, 700)
    assert max_in_window(times, 1.0) <= 7
    # and it is not needlessly slow: 700 requests in about 100 s at 7/s (less the burst)
    assert 699 / 7 <= times[-1] - times[0] <= 700 / 7 * 1.03


def test_bitrix24_shape_bursts_fifty_then_drains_two_per_second() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=2, burst=50, clock=clock, sleep=clock.sleep)
    times = sent_times(limiter, clock, 250)
    assert times[49] == times[0], "the first fifty go at once"
    assert times[50] > times[0]
    start = times[0]
    for i, t in enumerate(times):
        assert i + 1 <= 50 + 2 * (t - start) + 1e-9, f"request {i} at +{t - start:.2f}s is over the bucket"
    assert max_in_window(times[50:], 10.0) <= 20


def test_drain_after_a_rate_limit_answer_waits_before_the_next_request() -> None:
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=2, burst=50, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.drain()
    before = clock.now
    limiter.acquire()
    assert clock.now - before >= 0.5 * 0.99
