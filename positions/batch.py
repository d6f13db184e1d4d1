"""`PositionBatch`: the one shape positions take between decoder, journal, store and engines.

Columns map one to one onto COPY columns and onto numpy/shapely calls, so hot paths never build
one Python object per position. Times are int64 epoch milliseconds, UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt


class Flag(enum.IntFlag):
    """Per-position quality flags (uint16 column `flags`)."""

    NONE = 0
    BACKFILL = 1  # arrived in a 0x0704 batch (type 1: blind-area re-send)
    INVALID_FIX = 2  # positioned bit off, or lat/lon both zero
    IMPLAUSIBLE = 4  # a GPS jump: implied speed above the glitch gate
    DUPLICATE = 8  # same device and fix time as an earlier position
    OUT_OF_ORDER = 16  # older than the device's newest position seen by the rules
    FUTURE = 32  # fix time too far ahead of receive time
    BAD_TIME = 64  # the device's time field was not a valid date
    BATCH = 128  # arrived in a 0x0704 batch (type 0)
    # The device clock (trajectory.clock): `time_ms` is the corrected time, `device_time_ms`
    # the time the device sent. CORRECTED: shifted by the device's learned whole-hour or GPS
    # week-rollover offset. RESET and STUCK (and FUTURE, set by the clock model): no usable
    # time, so `time_ms` is the receive time and the row stays out of the location rules.
    CLOCK_CORRECTED = 256
    CLOCK_RESET = 512  # reset to an epoch (2000-01-01, 1980-01-06) or otherwise far in the past
    CLOCK_STUCK = 1024  # the device's time stopped advancing while its reports kept coming


# Flags of rows the location rules and "latest" never use.
NOT_VALID = (
    Flag.INVALID_FIX
    | Flag.IMPLAUSIBLE
    | Flag.DUPLICATE
    | Flag.FUTURE
    | Flag.BAD_TIME
    | Flag.CLOCK_RESET
    | Flag.CLOCK_STUCK
)

# name -> dtype, in COPY / storage order.
COLUMNS: dict[str, np.dtype[Any]] = {
    "device": np.dtype(np.int32),
    "time_ms": np.dtype(np.int64),
    "recv_ms": np.dtype(np.int64),
    "device_time_ms": np.dtype(np.int64),
    "lon": np.dtype(np.float64),
    "lat": np.dtype(np.float64),
    "speed_kmh": np.dtype(np.float32),
    "course": np.dtype(np.int16),
    "altitude_m": np.dtype(np.int32),
    "alarm": np.dtype(np.uint32),
    "status": np.dtype(np.uint32),
    "flags": np.dtype(np.uint16),
}


@dataclass(frozen=True, slots=True)
class PositionBatch:
    """Equal-length columns; row i of every column is one position.

    `device` is a dense index from a `DeviceIndex`; the batch itself holds no strings.
    `time_ms` is the fix time the rules and the store use (corrected for a device clock known
    to be off, see `Flag`), `device_time_ms` the fix time as the device sent it, `recv_ms`
    when the platform received it.
    Builders keep rows sorted by (device, time_ms) where the consumer needs it (`sorted()`).
    """

    device: npt.NDArray[np.int32]
    time_ms: npt.NDArray[np.int64]
    recv_ms: npt.NDArray[np.int64]
    device_time_ms: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float32]
    course: npt.NDArray[np.int16]
    altitude_m: npt.NDArray[np.int32]
    alarm: npt.NDArray[np.uint32]
    status: npt.NDArray[np.uint32]
    flags: npt.NDArray[np.uint16]

    def __post_init__(self) -> None:
        n = len(self.device)
        for f in fields(self):
            column = getattr(self, f.name)
            expected = COLUMNS[f.name]
            if not isinstance(column, np.ndarray) or column.ndim != 1:
                raise TypeError(f"column {f.name} must be a 1-d numpy array")
            if column.dtype != expected:
                raise TypeError(f"column {f.name} has dtype {column.dtype}, expected {expected}")
            if len(column) != n:
                raise ValueError(f"column {f.name} has {len(column)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.device)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> PositionBatch:
        """Builds a batch from array-likes, casting each to its dtype; missing columns are 0,
        but a missing `device_time_ms` is `time_ms` (a device whose clock needed nothing)."""
        n = len(next(iter(columns.values()))) if columns else 0
        built: dict[str, Any] = {}
        for name, dtype in COLUMNS.items():
            if name in columns:
                built[name] = np.ascontiguousarray(np.asarray(columns[name]), dtype=dtype)
            elif name == "device_time_ms" and "time_ms" in built:
                built[name] = built["time_ms"]
            else:
                built[name] = np.zeros(n, dtype=dtype)
        return cls(**built)

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name) for name in COLUMNS}

    def take(self, index: npt.ArrayLike) -> PositionBatch:
        """Rows selected by an integer index or boolean mask, as a new batch."""
        idx = np.asarray(index)
        return PositionBatch(**{name: col[idx] for name, col in self.columns().items()})

    def sorted(self) -> PositionBatch:
        """Rows ordered by (device, time_ms), stable for equal keys."""
        order = np.lexsort((self.time_ms, self.device))
        return self.take(order)

    def valid(self) -> npt.NDArray[np.bool_]:
        """Rows the location rules may use: positioned, non-zero, not flagged bad."""
        return np.asarray((self.flags & np.uint16(NOT_VALID)) == 0, dtype=np.bool_)

    @staticmethod
    def concat(batches: list[PositionBatch]) -> PositionBatch:
        if not batches:
            return empty_batch()
        return PositionBatch(
            **{name: np.concatenate([getattr(b, name) for b in batches]) for name in COLUMNS}
        )


def empty_batch() -> PositionBatch:
    return PositionBatch(**{name: np.zeros(0, dtype=dtype) for name, dtype in COLUMNS.items()})
