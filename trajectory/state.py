"""Per-device state columns that grow as new devices appear (dense device indexes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def held(
    last_ms: npt.NDArray[np.int64], running: npt.NDArray[np.bool_], from_ms: int, to_ms: int
) -> None:
    """Silence timers held from `from_ms` to `to_ms` (the platform could not hear anyone): each
    running timer's start moves later by the part of the hold after it, in place, so no time of
    the hold counts towards a silence."""
    rows = np.flatnonzero(running)
    start = last_ms[rows]
    last_ms[rows] = start + (to_ms - np.maximum(start, from_ms)).clip(min=0)


def grown(column: npt.NDArray[Any], size: int, fill: Any) -> npt.NDArray[Any]:
    """`column` extended to at least `size` rows, new rows set to `fill` (amortised doubling)."""
    if len(column) >= size:
        return column
    bigger = np.full(max(size, 2 * len(column), 16), fill, dtype=column.dtype)
    bigger[: len(column)] = column
    return bigger
