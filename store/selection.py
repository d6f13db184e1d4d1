"""Pure row selections both adapters share, so thinning and "latest" mean the same everywhere."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from positions import PositionBatch


def thin(
    batch: PositionBatch, *, max_points: int | None = None, interval_ms: int | None = None
) -> PositionBatch:
    """Thins a time-ordered one-device track for display.

    `interval_ms` keeps the first fix in each interval (intervals aligned on the epoch, so pages
    fetched separately agree); then `max_points` keeps at most that many, evenly spaced by index,
    always including the first and the last.
    """
    if interval_ms is not None and interval_ms <= 0:
        raise ValueError("interval_ms must be positive")
    if max_points is not None and max_points <= 0:
        raise ValueError("max_points must be positive")
    if interval_ms is not None and len(batch):
        bucket = np.floor_divide(batch.time_ms, interval_ms)
        first = np.ones(len(batch), dtype=np.bool_)
        first[1:] = bucket[1:] != bucket[:-1]
        batch = batch.take(first)
    if max_points is not None and len(batch) > max_points:
        if max_points == 1:
            keep = np.array([len(batch) - 1])
        else:
            keep = np.unique(np.round(np.linspace(0, len(batch) - 1, max_points)).astype(np.int64))
        batch = batch.take(keep)
    return batch


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
