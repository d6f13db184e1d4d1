"""Per-device state columns that grow as new devices appear (dense device indexes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def grown(column: npt.NDArray[Any], size: int, fill: Any) -> npt.NDArray[Any]:
    """`column` extended to at least `size` rows, new rows set to `fill` (amortised doubling)."""
    if len(column) >= size:
        return column
    bigger = np.full(max(size, 2 * len(column), 16), fill, dtype=column.dtype)
    bigger[: len(column)] = column
    return bigger
