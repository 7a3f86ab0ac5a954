"""Reading a list's next page while the page before it lands.

A paged list knows its next request as soon as a page is parsed (a ``next`` link, a keyset
position), before the page is landed. ``read_ahead`` sends that request at once, on one
worker thread, and hands the parsed page to the caller, who lands it (records and cursor in
one transaction) while the next answer travels. So a run costs about the longer of the two
per page, not their sum.

What stays as it was:

- One request is in flight at a time: the worker sends page k + 1 while the caller lands
  page k, and the caller asks for k + 2 only once k + 1 is in. The limiter sees the same
  sequence of ``acquire``/``done`` as from a sequential client, so its window holds as before.
- Pages reach the caller in order, each one after the one before it was handed over and
  landed: what is committed is always a prefix of the list with the cursor of its last page.
  A run killed at any moment leaves pages 1..k landed with the cursor of page k, and the
  next run starts there. A request sent for page k + 1 whose page never landed was only a
  read.
- An error of the request for page k + 1 (retries exhausted, a blocked account, the process
  being stopped) reaches the caller when it asks for that page, after page k has landed,
  exactly where a sequential client would have met it.

The worker never touches the warehouse: the caller's transaction is open on the connection
while it works. Work that must commit there on its own (a rotated OAuth token pair) calls
``foreground_only()`` first, which in the worker raises ``NeedsForeground``; the request is
then sent again from the caller's thread, between two transactions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Request = TypeVar("Request")
Page = TypeVar("Page")

_worker = threading.local()


class NeedsForeground(Exception):  # noqa: N818 - a signal to the caller, not a failure
    """Raised in the worker by what may only run in the caller's thread."""


def foreground_only() -> None:
    """Call before work that writes to the warehouse: in the read-ahead worker it raises
    ``NeedsForeground`` (the request is then repeated by the caller's thread)."""
    if getattr(_worker, "active", False):
        raise NeedsForeground


def _in_worker(fetch: Callable[[Request], Page], request: Request) -> Page:
    _worker.active = True
    try:
        return fetch(request)
    finally:
        _worker.active = False


def read_ahead(
    fetch: Callable[[Request], Page],
    first: Request,
    after: Callable[[Request, Page], Request | None],
) -> Iterator[Page]:
    """Every page of a list, in order: ``fetch(first)``, then ``fetch(after(request, page))``
    until ``after`` answers None. ``fetch`` sends a request and parses its answer (without
    touching the warehouse); ``after`` says, from a parsed page, what to ask for next. The
    request for the next page goes out before the current one is yielded."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as worker:
        request, page = first, fetch(first)
        while True:
            following = after(request, page)
            pending: Future[Page] | None = None
            if following is not None:
                pending = worker.submit(_in_worker, fetch, following)
            yield page  # the caller lands it while the next request is out
            if pending is None or following is None:
                return
            request, page = following, _answer(pending, fetch, following)


def _answer(pending: Future[Page], fetch: Callable[[Request], Page], request: Request) -> Page:
    try:
        return pending.result()
    except NeedsForeground:
        return fetch(request)
