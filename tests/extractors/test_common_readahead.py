"""Reading ahead: the next page's request is out while the caller works on the page before it;
pages arrive in order, one request at a time, and what only the caller's thread may do is
done there."""

from __future__ import annotations

import threading

import pytest

from extractors.common.readahead import foreground_only, read_ahead

PAGES = 6


class Pager:
    """A list of ``PAGES`` pages; request n answers page n and knows n + 1 is next."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent: list[int] = []
        self.threads: dict[int, list[str]] = {}
        self.started = {n: threading.Event() for n in range(1, PAGES + 1)}

    def fetch(self, n: int) -> int:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.sent.append(n)
            self.threads.setdefault(n, []).append(threading.current_thread().name)
        self.started[n].set()
        with self.lock:
            self.in_flight -= 1
        return n

    @staticmethod
    def after(n: int, page: int) -> int | None:
        assert page == n
        return n + 1 if n < PAGES else None


def test_pages_come_in_order_and_the_next_request_is_out_while_the_caller_lands_a_page() -> None:
    pager = Pager()
    got = []
    for page in read_ahead(pager.fetch, 1, pager.after):
        if page < PAGES:  # the caller still holds page k: the request for k + 1 went out anyway
            assert pager.started[page + 1].wait(timeout=30), f"page {page + 1} was not asked for ahead"
        got.append(page)
    assert got == list(range(1, PAGES + 1))
    assert pager.sent == got  # each page asked for once, in order
    assert pager.most_in_flight == 1  # never two requests at once
    assert pager.threads[1] == [threading.current_thread().name]
    assert all(t[0].startswith("read-ahead") for n, t in pager.threads.items() if n > 1)


def test_what_must_run_in_the_callers_thread_is_repeated_there() -> None:
    pager = Pager()

    def fetch(n: int) -> int:
        if n == 3:
            foreground_only()  # an OAuth refresh: it writes to the warehouse
        return pager.fetch(n)

    assert list(read_ahead(fetch, 1, pager.after)) == list(range(1, PAGES + 1))
    assert pager.threads[3] == [threading.current_thread().name]  # sent once, by the caller's thread
    foreground_only()  # outside the worker it is a no-op


class Refused(Exception):
    pass


def test_an_error_of_the_next_request_reaches_the_caller_after_the_page_before_it() -> None:
    def fetch(n: int) -> int:
        if n == 4:
            raise Refused
        return n

    got = []
    with pytest.raises(Refused):
        for page in read_ahead(fetch, 1, Pager.after):
            got.append(page)
    assert got == [1, 2, 3]


def test_a_caller_that_stops_early_leaves_no_request_behind() -> None:
    pager = Pager()
    pages = read_ahead(pager.fetch, 1, pager.after)
    for page in pages:
        if page == 2:
            break
    pages.close()  # what a failed landing does: the request already out is waited for, not leaked
    assert pager.sent == [1, 2, 3] and pager.in_flight == 0
