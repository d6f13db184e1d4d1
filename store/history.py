"""Stored history in pages: windows of fix time, sized to about a batch of rows each.

`prefetched` reads the next window on a thread of its own while the caller works on the current
one (the database and the engine then use the two cores at once); the store is that thread's
alone until the pages are exhausted or the generator closed.

Each page is `Store.positions_between` over the next window (grouped by device, each device's
rows in fix-time order), so a reader walks [since, until) once, in time order, holding one page
at a time; the window grows or shrinks towards `target_rows` as the fleet's density changes,
and never crosses a UTC midnight (a day of 1,000 cars is one page: one scan of its partition).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from store.interface import PositionPage, Store

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
TARGET_ROWS = 524_288


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One window [from_ms, to_ms) of stored positions."""

    page: PositionPage
    from_ms: int
    to_ms: int


def pages(
    store: Store,
    since_ms: int,
    until_ms: int,
    *,
    target_rows: int = TARGET_ROWS,
    first_window_ms: int = 15 * MINUTE_MS,
) -> Iterator[HistoryPage]:
    """Every position with since_ms <= fix time < until_ms, window after window."""
    start, window = since_ms, max(MINUTE_MS, first_window_ms)
    while start < until_ms:
        # A window never crosses a UTC midnight: positions are stored in daily partitions, and
        # a window inside one day scans that day's partition alone.
        midnight = (start // DAY_MS + 1) * DAY_MS
        end = min(until_ms, start + window, midnight)
        page = store.positions_between(start, end)
        yield HistoryPage(page, start, end)
        rows = len(page.batch)
        # Aim the next window at the target; a quiet stretch (nights) doubles it at most.
        scale = 2.0 if rows == 0 else min(2.0, max(0.25, target_rows / rows))
        window = int(min(DAY_MS, max(MINUTE_MS, (end - start) * scale)))
        start = end


_DONE = object()


def prefetched(pages_: Iterator[HistoryPage], ahead: int = 2) -> Iterator[HistoryPage]:
    """`pages_` read up to `ahead` pages in advance on a reader thread; its error is raised
    here, in order. Closing the generator stops the reader after its current page."""
    box: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def read() -> None:
        try:
            for page in pages_:
                if stop.is_set():
                    return
                box.put(page)
            box.put(_DONE)
        except BaseException as exc:  # handed over to the consumer
            box.put(exc)

    reader = threading.Thread(target=read, name="history-pages", daemon=True)
    reader.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, HistoryPage)
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                box.get(timeout=0.05)
        reader.join()
