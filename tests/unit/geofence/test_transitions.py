"""Transitions: confirmation over N valid fixes, no flapping, dwell, batch splits, reloads."""

from __future__ import annotations

import numpy as np
import shapely

from geofence import ENTER, EXIT, Fence, FenceKind, FenceSet, Transitions, TransitionTracker

# A yard whose west edge is at lon 116.4; GPS noise of ~10 m is about 1e-4 degrees.
YARD = Fence("yard", FenceKind.ZONE, shapely.box(116.4, 39.8, 116.5, 39.9))
FENCES = FenceSet([YARD], version=1)
T0 = 1_700_000_000_000


def feed(
    tracker: TransitionTracker,
    lon: list[float],
    valid: list[bool] | None = None,
    device: list[int] | None = None,
    t0_ms: int = T0,
    fence_set: FenceSet = FENCES,
) -> Transitions:
    n = len(lon)
    lon_a = np.array(lon)
    lat_a = np.full(n, 39.85)
    dev = np.array(device if device is not None else [0] * n, np.int32)
    rows, fences = fence_set.contains(lon_a, lat_a, np.zeros(n, np.int32))
    times = t0_ms + np.arange(n, dtype=np.int64) * 30_000
    ok = np.array(valid if valid is not None else [True] * n)
    return tracker.update(fence_set, rows, fences, dev, times, ok)


def test_a_track_zigzagging_across_the_boundary_within_gps_noise_raises_nothing() -> None:
    tracker = TransitionTracker()
    noise = [116.4 + (8e-5 if i % 2 else -8e-5) for i in range(40)]
    assert len(feed(tracker, noise)) == 0


def test_a_real_crossing_raises_exactly_one_enter_at_the_first_inside_fix() -> None:
    tracker = TransitionTracker()
    track = [116.39, 116.395, 116.41, 116.42, 116.43, 116.44]
    events = feed(tracker, track)
    assert events.kind.tolist() == [ENTER]
    assert events.time_ms.tolist() == [T0 + 2 * 30_000]  # the first of the two confirming fixes
    assert events.row.tolist() == [3]  # the fix that confirmed it


def test_an_invalid_fix_neither_starts_nor_ends_a_change() -> None:
    tracker = TransitionTracker()
    track = [116.39, 116.41, 0.0, 116.42, 116.39, 0.0, 116.43]
    valid = [True, True, False, True, True, False, True]
    events = feed(tracker, track, valid)
    assert events.kind.tolist() == [ENTER]
    assert events.time_ms.tolist() == [T0 + 30_000]


def test_leaving_after_entering_raises_exit_and_ends_the_stay() -> None:
    tracker = TransitionTracker()
    events = feed(tracker, [116.41, 116.42, 116.43, 116.39, 116.38])
    assert events.kind.tolist() == [ENTER, EXIT]
    assert len(tracker.inside()) == 0


def test_a_change_confirmed_across_two_batches_keeps_the_first_fix_time() -> None:
    tracker = TransitionTracker()
    assert len(feed(tracker, [116.39, 116.41])) == 0
    events = feed(tracker, [116.42], t0_ms=T0 + 60_000)
    assert events.time_ms.tolist() == [T0 + 30_000]
    assert events.row.tolist() == [0]


def test_dwell_is_due_only_when_data_time_passes_entry_plus_the_threshold() -> None:
    tracker = TransitionTracker()
    feed(tracker, [116.41, 116.42, 116.43])
    (since,) = tracker.inside().since_ms.tolist()
    assert since == T0
    thirty_min_ms = 30 * 60_000
    assert len(tracker.dwelling(T0 + thirty_min_ms - 1, thirty_min_ms)) == 0
    due = tracker.dwelling(T0 + thirty_min_ms, thirty_min_ms)
    assert (due.device.tolist(), due.fence.tolist()) == ([0], [0])


def test_devices_interleaved_in_one_batch_are_tracked_separately() -> None:
    tracker = TransitionTracker()
    lon = [116.41, 116.39, 116.42, 116.39, 116.43, 116.41]
    events = feed(tracker, lon, device=[1, 2, 1, 2, 1, 2])
    assert events.device.tolist() == [1]


def test_a_new_fence_set_carries_state_by_fence_id() -> None:
    tracker = TransitionTracker()
    feed(tracker, [116.41, 116.42])
    other = Fence("other", FenceKind.HOTSPOT, shapely.Point(100.0, 30.0), radius_m=50.0)
    reloaded = FenceSet([other, YARD], version=2)
    events = feed(tracker, [116.43, 116.39, 116.38], fence_set=reloaded)
    assert events.kind.tolist() == [EXIT]
    assert events.fence.tolist() == [1]
    removed = FenceSet([other], version=3)
    assert len(feed(tracker, [116.39, 116.38], fence_set=removed)) == 0
    assert len(tracker.inside()) == 0
