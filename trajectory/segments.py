"""Per-device segment helpers for rows sorted by device: where each device's rows begin, and
the previous row of the same device, so sequential rules can be written as array operations."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
# Device and vehicle indexes: int32 as a batch stores them, intp inside the engine (numpy
# gathers per-device state several times faster with a native index).
Ints = npt.NDArray[np.signedinteger[Any]]


def first_of_device(device: Ints) -> BoolArray:
    """True on the first row of each device's run of rows (rows grouped by device)."""
    first = np.ones(len(device), dtype=np.bool_)
    if len(device) > 1:
        first[1:] = device[1:] != device[:-1]
    return first


def last_of_device(device: Ints) -> BoolArray:
    """True on the last row of each device's run of rows."""
    last = np.ones(len(device), dtype=np.bool_)
    if len(device) > 1:
        last[:-1] = device[1:] != device[:-1]
    return last


def latest_marker(marker: BoolArray) -> IntArray:
    """For each row, the index of the latest row at or before it where `marker` is set (-1)."""
    # Each row's own index where marked, 0 elsewhere, -1 before the first mark; then a running
    # maximum (twice as fast as building the same column with np.where).
    idx = np.arange(len(marker))
    if len(idx) == 0:
        return idx
    idx *= marker
    head = int(marker.argmax())
    if not marker[head]:
        idx.fill(-1)
        return idx
    idx[:head] = -1
    return np.maximum.accumulate(idx, out=idx)


def run_start_times(
    device: Ints,
    time_ms: npt.NDArray[np.int64],
    cond: BoolArray,
    carried_start_ms: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Start time of the condition run each row belongs to (-1 where `cond` is false).

    Rows are grouped by device in time order. `carried_start_ms[device]` is the start of a run
    still open at the end of the previous batch (-1 if none), so runs continue across batches.
    """
    n = len(cond)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    first = first_of_device(device)
    carried = carried_start_ms[device]
    prev_cond = np.empty(n, dtype=np.bool_)
    prev_cond[0] = False
    prev_cond[1:] = cond[:-1]
    prev_cond = np.where(first, carried >= 0, prev_cond)
    starts = cond & ~prev_cond
    last = latest_marker(starts | first)
    start_ms = np.where(starts[last], time_ms[last], carried[last])
    return np.where(cond, start_ms, -1).astype(np.int64, copy=False)


def sort_order(*keys: npt.NDArray[np.integer[Any]]) -> IntArray:
    """The stable permutation sorting rows by `keys`, major key first: `np.lexsort` with the
    keys reversed. When their ranges fit in 63 bits together, one argsort of a packed key does
    it (several times faster than lexsort on these columns)."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, np.intp)
    spans = [(int(k.min()), int(k.max())) for k in keys]
    widths = [(hi - lo).bit_length() for lo, hi in spans]
    if sum(widths) > 62:
        return np.lexsort(tuple(reversed(keys)))
    packed = np.zeros(n, np.int64)
    for key, (lo, _), width in zip(keys, spans, widths, strict=True):
        packed <<= width
        packed |= key.astype(np.int64) - lo
    return np.argsort(packed, kind="stable")


def running_max(
    device: Ints, values: npt.NDArray[np.int64], carried: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per row, the largest value of its device before it (`carried[device]` from earlier
    batches included) and the largest including it. Rows grouped by device."""
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = first_of_device(device)
    seg = (np.cumsum(first) - 1).astype(np.int64)
    lo = int(values.min())
    span = int(values.max()) - lo + 1
    if span * (int(seg[-1]) + 1) < 2**62:
        key = seg * span + (values - lo)
        upto = np.maximum.accumulate(key) - seg * span + lo
    else:  # a pathological spread of values: one device at a time
        upto = np.empty_like(values)
        starts = np.flatnonzero(first)
        for a, b in zip(starts, [*starts[1:], n], strict=True):
            upto[a:b] = np.maximum.accumulate(values[a:b])
    before = np.empty_like(values)
    before[1:] = upto[:-1]
    before = np.where(first, carried[device], np.maximum(before, carried[device]))
    return before, np.maximum(upto, before)


def device_order(device: npt.NDArray[np.int32]) -> IntArray:
    """The stable order grouping rows by device: through 16-bit keys when the indexes fit
    (numpy radix-sorts those, about 10x its merge sort on 32-bit keys)."""
    if len(device) and int(device.min()) >= 0 and int(device.max()) < 1 << 16:
        return np.argsort(device.astype(np.uint16), kind="stable")
    return np.argsort(device, kind="stable")


def last_row_of_each(key: Ints) -> IntArray:
    """The last row of each distinct `key`, in key order: with rows sorted by time within each
    key (the vehicle-sorted rows of the vehicle rules), each device's latest row. A stable sort
    on the key alone, through 16-bit keys when they fit (numpy radix-sorts those)."""
    if len(key) and int(key.min()) >= 0 and int(key.max()) < 1 << 16:
        order = np.argsort(key.astype(np.uint16), kind="stable")
    else:
        order = np.argsort(key, kind="stable")
    return np.asarray(order[last_of_device(key[order])], np.intp)
