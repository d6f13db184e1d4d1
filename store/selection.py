"""Pure row selections both adapters share, so thinning and "latest" mean the same everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from positions import PositionBatch, empty_batch


def thin(
    batch: PositionBatch, *, max_points: int | None = None, interval_ms: int | None = None
) -> PositionBatch:
    """Thins a time-ordered one-device track for display.

    `interval_ms` keeps the first fix in each interval (intervals aligned on the epoch, so pages
    fetched separately agree); then `max_points` keeps at most that many, evenly spaced by index,
    always including the first and the last.
    """
    return read_track(lambda: iter([batch]), max_points=max_points, interval_ms=interval_ms)


def newest_valid_per_device(batch: PositionBatch) -> npt.NDArray[np.int64]:
    """Row indexes of each device's newest valid fix in `batch` (ties: the last row)."""
    candidates = np.flatnonzero(batch.valid())
    if not len(candidates):
        return candidates.astype(np.int64)
    device = batch.device[candidates]
    order = np.lexsort((batch.time_ms[candidates], device))
    ordered_device = device[order]
    last_of_device = np.ones(len(order), dtype=np.bool_)
    last_of_device[:-1] = ordered_device[1:] != ordered_device[:-1]
    return candidates[order[last_of_device]].astype(np.int64)


def last_seen_per_device(
    batch: PositionBatch,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """(device, newest receive time) for each device in the batch."""
    if not len(batch):
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    order = np.lexsort((batch.recv_ms, batch.device))
    device = batch.device[order]
    last = np.ones(len(order), dtype=np.bool_)
    last[:-1] = device[1:] != device[:-1]
    return device[last], batch.recv_ms[order][last]


TRACK_PAGE_ROWS = 16_384


def keyset_pages(
    from_ms: int, to_ms: int, rows: int, page: Callable[[int, int], PositionBatch]
) -> Iterator[PositionBatch]:
    """A one-device range in time order, `page(start_ms, rows)` at a time: each page starts
    after the last fix of the one before (fix times are unique per device), the last one is
    short."""
    start = from_ms
    while start < to_ms:
        batch = page(start, rows)
        if not len(batch):
            return
        yield batch
        if len(batch) < rows:
            return
        start = int(batch.time_ms[-1]) + 1


def read_track(
    pages: Callable[[], Iterator[PositionBatch]],
    *,
    max_points: int | None = None,
    interval_ms: int | None = None,
    limit: int | None = None,
) -> PositionBatch:
    """`thin` over a track read page by page in time order, never holding the whole range.

    `pages()` yields the range's rows in time order (each call starts over). With `limit`, at
    most `limit + 1` rows come back: reading stops once the answer is over the limit, so a caller
    can refuse a range too long to show without loading it. `max_points` needs the thinned count
    first, so the range is then read twice: once counting, once selecting.
    """
    if interval_ms is not None and interval_ms <= 0:
        raise ValueError("interval_ms must be positive")
    if max_points is not None and max_points <= 0:
        raise ValueError("max_points must be positive")
    keep: npt.NDArray[np.int64] | None = None
    if max_points is not None:
        total = sum(len(page) for page in _bucket_firsts(pages(), interval_ms))
        if total > max_points:
            if max_points == 1:
                keep = np.array([total - 1], np.int64)
            else:
                keep = np.unique(np.round(np.linspace(0, total - 1, max_points)).astype(np.int64))
    taken: list[PositionBatch] = []
    count = 0
    offset = 0  # index of the page's first thinned row in the whole thinned track
    for page in _bucket_firsts(pages(), interval_ms):
        if keep is not None:
            lo, hi = np.searchsorted(keep, [offset, offset + len(page)])
            start, offset = offset, offset + len(page)
            page = page.take(keep[lo:hi] - start)
        taken.append(page)
        count += len(page)
        if limit is not None and count > limit:
            break
    if not taken:
        return empty_batch()
    batch = PositionBatch.concat(taken)
    return batch if limit is None or len(batch) <= limit + 1 else batch.take(np.arange(limit + 1))


def _bucket_firsts(
    pages: Iterator[PositionBatch], interval_ms: int | None
) -> Iterator[PositionBatch]:
    """Each page with only the first row of each `interval_ms` bucket (buckets on the epoch),
    the bucket carried from page to page."""
    last: int | None = None
    for page in pages:
        if interval_ms is None or not len(page):
            yield page
            continue
        bucket = np.floor_divide(page.time_ms, interval_ms)
        first = np.ones(len(page), dtype=np.bool_)
        first[1:] = bucket[1:] != bucket[:-1]
        if last is not None and bucket[0] == last:
            first[0] = False
        last = int(bucket[-1])
        yield page.take(first)
