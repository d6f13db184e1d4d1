"""Transitions equal a fix-by-fix reference machine, whatever the batch cuts and fence reloads."""

from __future__ import annotations

import itertools
import random

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import ENTER, Fence, FenceKind, FenceSet, TransitionTracker
from geofence.transitions import _in_sorted, _order_by, _sorted_union

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


@settings(max_examples=100, deadline=None)
@given(streams, st.randoms(use_true_random=False))
def test_membership_pairs_in_any_order_give_the_same_transitions(
    case: tuple[list[int], list[float], list[bool], list[int], int, list[bool]],
    shuffler: random.Random,
) -> None:
    devices, xs, valid, _, confirm, _ = case
    lon = np.array(xs)
    rows, fences = SET_V1.contains(lon, np.full(len(lon), 0.5), np.zeros(len(lon), np.int32))
    order = list(range(len(rows)))
    shuffler.shuffle(order)
    args = (np.array(devices, np.int32), np.arange(len(xs), dtype=np.int64), np.array(valid))
    sorted_events = TransitionTracker(confirm).update(SET_V1, rows, fences, *args)
    shuffled_events = TransitionTracker(confirm).update(SET_V1, rows[order], fences[order], *args)
    for column in ("device", "fence", "kind", "time_ms", "row"):
        assert np.array_equal(getattr(sorted_events, column), getattr(shuffled_events, column))


# Small values collide (ties, packed keys); huge ones overflow a packed key (lexsort fallback).
values = st.integers(0, 50) | st.integers(0, 2**63 - 1)
keys = st.lists(values, max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_ordering_helpers_equal_their_numpy_definitions(data: st.DataObject) -> None:
    major = np.array(data.draw(keys), dtype=np.int64)
    n = len(major)
    minor = np.array(data.draw(st.lists(values, min_size=n, max_size=n)), dtype=np.int64)
    assert np.array_equal(_order_by(major, minor), np.lexsort((minor, major)))
    ascending = np.arange(n, dtype=np.int64)  # ascends within every major value
    assert np.array_equal(
        _order_by(major, ascending, ordered_within=True), np.lexsort((ascending, major))
    )
    a = np.unique(np.array(data.draw(keys), dtype=np.int64))
    b = np.unique(np.array(data.draw(keys), dtype=np.int64))
    assert np.array_equal(_sorted_union(a, b), np.union1d(a, b))
    assert np.array_equal(_in_sorted(major, a), np.isin(major, a))


@settings(max_examples=300, deadline=None)
@given(streams)
def test_batches_grouped_by_device_equal_the_reference(
    case: tuple[list[int], list[float], list[bool], list[int], int, list[bool]],
) -> None:
    """The usual batch: each device's fixes together, in time order (their places then follow
    from the invalid rows alone), invalid fixes anywhere, runs of them inside a stay."""
    devices, xs, valid, cuts, confirm, reload_at = case
    order = sorted(range(len(devices)), key=lambda i: devices[i])
    devices = [devices[i] for i in order]
    xs = [xs[i] for i in order]
    valid = [valid[i] for i in order]
    events, inside = run(devices, xs, valid, cuts, confirm, reload_at)
    assert sorted(events) == sorted(reference(devices, xs, valid, confirm))
    whole, whole_inside = run(devices, xs, valid, [], confirm, [False])
    assert sorted(events) == sorted(whole)
    assert inside == whole_inside
