"""Thinning and latest-row selection shared by both adapters."""

from __future__ import annotations

import numpy as np
import pytest

from positions import Flag, PositionBatch
from store.selection import last_seen_per_device, newest_valid_per_device, thin


def track(times_ms: list[int]) -> PositionBatch:
    return PositionBatch.from_columns({"device": np.zeros(len(times_ms)), "time_ms": times_ms})


def test_interval_thinning_keeps_the_first_fix_of_each_epoch_aligned_interval() -> None:
    got = thin(track([0, 10, 59, 60, 61, 200, 239, 240]), interval_ms=60)
    assert got.time_ms.tolist() == [0, 60, 200, 240]


def test_max_points_keeps_first_and_last_evenly_spaced() -> None:
    got = thin(track(list(range(0, 1000, 10))), max_points=5)
    assert got.time_ms.tolist() == [0, 250, 500, 740, 990]
    assert thin(track([1, 2, 3]), max_points=1).time_ms.tolist() == [3]
    assert thin(track([1, 2, 3]), max_points=10).time_ms.tolist() == [1, 2, 3]


def test_thinning_rejects_non_positive_limits() -> None:
    with pytest.raises(ValueError, match="interval_ms"):
        thin(track([1]), interval_ms=0)
    with pytest.raises(ValueError, match="max_points"):
        thin(track([1]), max_points=0)


def test_newest_valid_fix_per_device_skips_flagged_rows() -> None:
    batch = PositionBatch.from_columns(
        {
            "device": [0, 0, 1, 1, 2],
            "time_ms": [5, 9, 7, 3, 1],
            "flags": [0, int(Flag.FUTURE), 0, 0, int(Flag.INVALID_FIX)],
        }
    )
    assert sorted(newest_valid_per_device(batch).tolist()) == [0, 2]


def test_last_seen_is_the_newest_receive_time_per_device() -> None:
    batch = PositionBatch.from_columns({"device": [3, 1, 3, 1], "recv_ms": [10, 40, 30, 20]})
    device, seen = last_seen_per_device(batch)
    assert (device.tolist(), seen.tolist()) == ([1, 3], [40, 30])
