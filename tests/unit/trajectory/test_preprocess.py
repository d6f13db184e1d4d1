"""Pre-processing flags, checked on the columns directly."""

from __future__ import annotations

import numpy as np

from positions import Flag
from trajectory.preprocess import Preprocessor


def _apply(pre: Preprocessor, t_s: list[int], lon: list[float], status: int = 2) -> np.ndarray:
    n = len(t_s)
    t = np.array(t_s, np.int64) * 1000
    out = pre.apply(
        np.zeros(n, np.int32), t, t, np.array(lon, np.float64), np.full(n, 31.0),
        np.full(n, status, np.uint32), np.zeros(n, np.uint16),
    )  # fmt: skip
    return out.flags


def test_out_of_order_and_duplicate_rows_are_flagged_and_counted_across_batches() -> None:
    pre = Preprocessor()
    _apply(pre, [0, 60], [121.0, 121.0])
    flags = _apply(pre, [30, 60, 120], [121.0, 121.0, 121.0])
    assert flags.tolist() == [Flag.OUT_OF_ORDER, Flag.DUPLICATE, 0]
    assert (pre.counts.out_of_order, pre.counts.duplicate) == (1, 1)


def test_a_jump_is_flagged_and_the_next_fix_is_measured_from_the_last_accepted_one() -> None:
    pre = Preprocessor()
    flags = _apply(pre, [0, 60, 120, 180], [121.0, 124.0, 121.001, 121.002])
    assert flags.tolist() == [0, Flag.IMPLAUSIBLE, 0, 0]
    assert pre.counts.gps_jump == 1


def test_a_fix_without_the_positioned_bit_is_invalid_not_a_jump() -> None:
    pre = Preprocessor()
    flags = _apply(pre, [0, 60], [0.0, 0.0], status=0)
    assert flags.tolist() == [Flag.INVALID_FIX, Flag.INVALID_FIX]
    assert pre.counts.gps_jump == 0
