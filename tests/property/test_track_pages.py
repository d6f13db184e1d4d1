"""A track read page by page thins exactly as the whole range would, and a limit stops early."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from positions import PositionBatch
from store.selection import read_track


def whole_range_thin(
    times: list[int], max_points: int | None, interval_ms: int | None
) -> list[int]:
    """The definition, on the whole range at once."""
    if interval_ms is not None:
        buckets = [t // interval_ms for t in times]
        times = [t for i, t in enumerate(times) if i == 0 or buckets[i] != buckets[i - 1]]
    if max_points is not None and len(times) > max_points:
        if max_points == 1:
            return times[-1:]
        keep = np.unique(np.round(np.linspace(0, len(times) - 1, max_points)).astype(np.int64))
        times = [times[i] for i in keep]
    return times


def batch(times: list[int]) -> PositionBatch:
    n = len(times)
    return PositionBatch.from_columns(
        {
            "device": [0] * n,
            "time_ms": times,
            "recv_ms": times,
            "lon": [121.0] * n,
            "lat": [31.0] * n,
        }
    )


@given(
    gaps=st.lists(st.integers(1, 5_000), max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=8),
    max_points=st.none() | st.integers(1, 50),
    interval_ms=st.none() | st.integers(1, 20_000),
    limit=st.none() | st.integers(0, 100),
)
def test_paged_reading_equals_the_whole_range_definition(
    gaps: list[int],
    cuts: list[int],
    max_points: int | None,
    interval_ms: int | None,
    limit: int | None,
) -> None:
    times = np.cumsum(gaps).tolist() if gaps else []
    whole = batch(times)
    bounds = sorted({0, len(times), *[min(c, len(times)) for c in cuts]})
    served: list[int] = []

    def pages() -> Iterator[PositionBatch]:
        for lo, hi in itertools.pairwise(bounds):
            served.append(hi - lo)
            yield whole.take(np.arange(lo, hi))

    got = read_track(pages, max_points=max_points, interval_ms=interval_ms, limit=limit)
    expected = whole_range_thin(times, max_points, interval_ms)
    if limit is None:
        assert got.time_ms.tolist() == expected
    else:
        assert got.time_ms.tolist() == expected[: limit + 1]
        if max_points is None and len(expected) > limit + 1:
            # Reading stopped with the page holding the first row over the limit.
            over = times.index(expected[limit])
            assert sum(served) == min(hi for hi in bounds if hi > over)
