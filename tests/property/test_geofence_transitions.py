"""Transitions equal a fix-by-fix reference machine, whatever the batch cuts and fence reloads."""

from __future__ import annotations

import itertools

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import ENTER, Fence, FenceKind, FenceSet, TransitionTracker

FENCES = [
    Fence("a", FenceKind.ZONE, shapely.box(0.0, 0.0, 1.0, 1.0)),
    Fence("b", FenceKind.HOTSPOT, shapely.box(0.5, 0.0, 2.0, 1.0)),
]
SET_V1 = FenceSet(FENCES, version=1)
# The same fences, reordered, plus one more: indexes change, ids do not.
EXTRA = Fence("c", FenceKind.ZONE, shapely.box(5.0, 5.0, 6.0, 6.0))
SET_V2 = FenceSet([EXTRA, FENCES[1], FENCES[0]], version=2)
SPANS = {"a": (0.0, 1.0), "b": (0.5, 2.0)}
PLACES = [0.2, 0.7, 1.5, 3.0]  # in a; in a and b; in b; in neither

Event = tuple[int, str, str, int]


def reference(devices: list[int], xs: list[float], valid: list[bool], confirm: int) -> list[Event]:
    """One fix at a time: a side change counts after `confirm` consecutive valid fixes."""
    events: list[Event] = []
    for device in sorted(set(devices)):
        for fence_id, (lo, hi) in SPANS.items():
            state, pending, first_ms = False, 0, 0
            for t, (d, x, ok) in enumerate(zip(devices, xs, valid, strict=True)):
                if d != device or not ok:
                    continue
                side = lo < x < hi
                if side == state:
                    pending = 0
                    continue
                pending += 1
                first_ms = t if pending == 1 else first_ms
                if pending >= confirm:
                    state, pending = side, 0
                    events.append((device, fence_id, "enter" if side else "exit", first_ms))
    return events


streams = st.integers(1, 80).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
        st.lists(st.sampled_from(PLACES), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
        st.lists(st.integers(1, n), max_size=5),
        st.integers(1, 3),
        st.lists(st.booleans(), min_size=6, max_size=6),
    )
)


def run(
    devices: list[int],
    xs: list[float],
    valid: list[bool],
    cuts: list[int],
    confirm: int,
    reload_at: list[bool],
) -> tuple[list[Event], list[tuple[int, str, int]]]:
    tracker = TransitionTracker(confirm)
    events: list[Event] = []
    bounds = [0, *sorted(set(cuts)), len(xs)]
    for i, (start, stop) in enumerate(itertools.pairwise(bounds)):
        if start >= stop:
            continue
        fence_set = SET_V2 if reload_at[i % len(reload_at)] else SET_V1
        lon = np.array(xs[start:stop])
        rows, fences = fence_set.contains(lon, np.full(len(lon), 0.5), np.zeros(len(lon), np.int32))
        batch = tracker.update(
            fence_set,
            rows,
            fences,
            np.array(devices[start:stop], np.int32),
            np.arange(start, stop, dtype=np.int64),
            np.array(valid[start:stop]),
        )
        ids = fence_set.ids(batch.fence)
        events += [
            (int(d), fid, "enter" if k == ENTER else "exit", int(t))
            for d, fid, k, t in zip(batch.device, ids, batch.kind, batch.time_ms, strict=True)
        ]
        # The confirming row is the event's device's own fix, at or after the event's time.
        assert np.array_equal(np.array(devices[start:stop])[batch.row], batch.device)
        assert np.all(start + batch.row >= batch.time_ms)
    stays = tracker.inside()
    inside = sorted(
        (int(d), fence_set.fences[int(f)].id, int(s))
        for d, f, s in zip(stays.device, stays.fence, stays.since_ms, strict=True)
    )
    return events, inside


@settings(max_examples=300, deadline=None)
@given(streams)
def test_batch_transitions_equal_the_reference_whatever_the_cuts_and_reloads(
    case: tuple[list[int], list[float], list[bool], list[int], int, list[bool]],
) -> None:
    devices, xs, valid, cuts, confirm, reload_at = case
    events, inside = run(devices, xs, valid, cuts, confirm, reload_at)
    assert sorted(events) == sorted(reference(devices, xs, valid, confirm))
    whole, whole_inside = run(devices, xs, valid, [], confirm, [False])
    assert sorted(events) == sorted(whole)
    assert inside == whole_inside
