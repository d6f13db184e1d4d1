"""Stops do not depend on where batches are cut, even when a parked car's fixes drift past the
radius several times within one batch (each drift starts a new stop at its own anchor)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trajectory.stops import StopDetector

M = 1 / 111_320  # a metre of latitude, in degrees


def _track(steps: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A parked car (speed 0) reporting every minute, drifting north by `steps` metres."""
    n = len(steps)
    t = 1_709_280_000_000 + np.arange(n, dtype=np.int64) * 60_000
    lat = 31.2 + np.cumsum(np.asarray(steps, np.float64)) * M
    return t, np.full(n, 121.4), lat, np.zeros(n, np.float32)


def _stops(track: tuple[np.ndarray, ...], cuts: list[int]) -> list[tuple[int, int, float]]:
    t, lon, lat, speed = track
    det = StopDetector()
    det.ensure(1)
    found: list[tuple[int, int, float]] = []
    bounds = [0, *sorted(set(cuts)), len(t)]
    for a, b in itertools.pairwise(bounds):
        if b <= a:
            continue
        ev = det.fixes(np.zeros(b - a, np.intp), t[a:b], lon[a:b], lat[a:b], speed[a:b])
        found += zip(ev.start_ms.tolist(), ev.end_ms.tolist(), ev.lat.tolist(), strict=True)
    return found


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([0, 5, 40, 90, 150]), min_size=10, max_size=120),
    st.lists(st.integers(1, 119), max_size=6),
)
def test_the_same_stops_for_any_cut(steps: list[int], cuts: list[int]) -> None:
    track = _track(steps)
    assert _stops(track, [c for c in cuts if c < len(steps)]) == _stops(track, [])


def test_a_drifting_car_makes_several_stops_in_one_batch() -> None:
    # 10 fixes still, then a drift of 90 m a minute for 8 minutes (past 200 m from the anchor
    # twice), then still again: three stops at least, as if read one fix at a time.
    steps = [0] * 10 + [90] * 8 + [0] * 10 + [1]
    whole = _stops(_track(steps), [])
    assert len(whole) >= 2
    assert whole == _stops(_track(steps), list(range(1, len(steps))))
