"""Enter/exit per (device, fence), confirmed over N consecutive valid fixes, on whole batches.

A boundary is noisy: a parked car's fixes scatter across it. A change of side counts only once
N consecutive valid fixes agree on the new side (contracts: N = 2), and its time is the first of
them. Invalid fixes are skipped entirely, so they neither start nor end a change.

The work is done on runs, not fixes: for one (device, fence) the fixes of a batch form runs of
inside and outside; a run of at least N (counting a pending run carried from the previous batch)
sets the state, and it is a transition when it differs from the state set by the run before.
That makes the result independent of how a device's time-ordered stream is cut into batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from geofence.fenceset import FenceSet

ENTER = np.uint8(1)
EXIT = np.uint8(2)
_FENCE_BITS = 32

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Transitions:
    """Events as columns, ordered by `row` then fence.

    `time_ms` is the time of the first of the confirming fixes (possibly in an earlier batch);
    `row` is the row of this batch whose fix completed the confirmation.
    """

    device: I32
    fence: I32
    kind: npt.NDArray[np.uint8]  # ENTER or EXIT
    time_ms: I64
    row: I64

    def __len__(self) -> int:
        return len(self.device)


@dataclass(frozen=True, slots=True)
class Inside:
    """Confirmed-inside (device, fence) pairs and the time each stay began (dwell timers)."""

    device: I32
    fence: I32
    since_ms: I64

    def __len__(self) -> int:
        return len(self.device)


@dataclass(frozen=True, slots=True)
class _State:
    key: I64  # device << 32 | fence index, sorted
    inside: Bools
    pending: I64  # consecutive valid fixes on the other side, < N
    pending_ms: I64  # time of the first of them
    since_ms: I64  # start of the confirmed stay when inside

    @staticmethod
    def empty() -> _State:
        z = np.zeros(0, np.int64)
        return _State(z, np.zeros(0, bool), z, z, z)

    def take(self, index: npt.NDArray[np.intp] | Bools) -> _State:
        return _State(
            self.key[index],
            self.inside[index],
            self.pending[index],
            self.pending_ms[index],
            self.since_ms[index],
        )


class TransitionTracker:
    """Carries per-(device, fence) state across batches; one owner, no locks.

    Bound to one FenceSet at a time: given a batch computed against a newer set, it first moves
    its state to the new fence indexes by fence id (a removed fence's state is dropped without
    an event), so swapping fence sets between batches loses no transition.
    """

    def __init__(self, confirm_fixes: int = 2) -> None:
        if confirm_fixes < 1:
            raise ValueError("confirm_fixes must be at least 1")
        self.confirm_fixes = confirm_fixes
        self._state = _State.empty()
        self._bound: FenceSet | None = None

    def update(
        self,
        fences: FenceSet,
        member_row: npt.ArrayLike,
        member_fence: npt.ArrayLike,
        device: npt.ArrayLike,
        time_ms: npt.ArrayLike,
        valid: npt.ArrayLike,
    ) -> Transitions:
        """Feeds one batch: membership pairs from `fences.contains`, and per-row device index,
        fix time and validity. Rows of one device must be in time order."""
        self._bind(fences)
        device_a = np.asarray(device)
        if not np.issubdtype(device_a.dtype, np.integer):
            device_a = device_a.astype(np.int64)
        time_a = np.asarray(time_ms, dtype=np.int64)
        valid_a = np.asarray(valid, dtype=bool)
        row_a = np.asarray(member_row, dtype=np.int64)
        fence_a = np.asarray(member_fence, dtype=np.int64)
        n_confirm = self.confirm_fixes

        # A pair's place is its row's place among the batch's valid rows grouped by device:
        # within one device consecutive valid fixes have consecutive places, which is all runs
        # need. `places` maps rows to places and back.
        change = np.flatnonzero(device_a[1:] != device_a[:-1]) + 1
        if bool(np.all(device_a[change] > device_a[change - 1])):
            # Grouped by device (the usual batch), checked on the rows where the device changes:
            # places follow from the few invalid rows alone.
            places: _Places = _GroupedPlaces(device_a, valid_a, change)
        else:
            places = _ShuffledPlaces(device_a, valid_a)
        devices, dev_start, dev_count = places.devices, places.first, places.count
        if len(devices) == 0:
            return _no_events()
        pair_row = row_a
        pair_key = (device_a[row_a].astype(np.int64) << _FENCE_BITS) | fence_a
        n_pairs = len(pair_key)
        if places.some_invalid:
            # Pairs of invalid fixes sort last under the largest key, and are cut off there.
            invalid = ~valid_a[row_a]
            n_invalid = int(np.count_nonzero(invalid))
            if n_invalid:
                pair_key[invalid] = np.iinfo(np.int64).max
                n_pairs -= n_invalid

        # Runs of "inside" per key, from the membership pairs of valid rows: a key's pairs in
        # row order, a run broken where the key changes or a valid fix of its device is missed.
        pair_pos = places.order_of(pair_row)
        order = _order_by(pair_key, pair_pos, ordered_within=_nondecreasing(pair_row))[:n_pairs]
        pair_key, pair_row = pair_key[order], pair_row[order]
        run_new = np.ones(len(pair_key), dtype=bool)
        if len(pair_key):
            same_key = pair_key[1:] == pair_key[:-1]
            run_new[1:] = ~same_key
            run_new[1:] |= places.apart(pair_row[:-1], pair_row[1:], same_key)
        run_at = np.flatnonzero(run_new)
        in_key = pair_key[run_at]
        in_start = places.place_of(pair_row[run_at])
        in_len = np.diff(np.append(run_at, len(pair_key)))

        # Every key this batch can move: seen inside now, or carried and its device reported.
        state = self._state
        carried = _in_sorted(state.key >> _FENCE_BITS, devices)
        keys = _sorted_union(in_key, state.key[carried])
        key_dev = keys >> _FENCE_BITS
        key_devpos = np.searchsorted(devices, key_dev)
        key_first = dev_start[key_devpos].astype(np.int64)  # the key's device's places
        key_end = key_first + dev_count[key_devpos]
        s_at = np.searchsorted(state.key, keys)
        s_hit = np.zeros(len(keys), dtype=bool)
        in_range = s_at < len(state.key)
        s_hit[in_range] = state.key[s_at[in_range]] == keys[in_range]
        s_idx = np.where(s_hit, s_at, 0)

        def carried_col(column: npt.NDArray[np.int64] | Bools) -> I64:
            if len(column) == 0:
                return np.zeros(len(keys), dtype=np.int64)
            return np.where(s_hit, column[s_idx], 0).astype(np.int64)

        s0 = carried_col(state.inside)
        p0 = carried_col(state.pending)
        p0_ms = carried_col(state.pending_ms)
        since0 = carried_col(state.since_ms)

        # All runs, outside runs being the gaps between inside runs.
        in_k = np.searchsorted(keys, in_key)
        first_in = np.ones(len(in_k), dtype=bool)
        first_in[1:] = in_k[1:] != in_k[:-1]
        last_in = np.ones(len(in_k), dtype=bool)
        last_in[:-1] = in_k[1:] != in_k[:-1]
        prev_end = np.empty(len(in_k), dtype=np.int64)
        prev_end[1:] = in_start[:-1] + in_len[:-1]
        gap_start = np.where(first_in, key_first[in_k], prev_end)
        tail_start = in_start[last_in] + in_len[last_in]
        has_inside = np.zeros(len(keys), dtype=bool)
        has_inside[in_k] = True
        quiet = np.flatnonzero(~has_inside)
        run_k = np.concatenate([in_k, in_k, in_k[last_in], quiet])
        run_start = np.concatenate([in_start, gap_start, tail_start, key_first[quiet]])
        run_len = np.concatenate(
            [
                in_len,
                in_start - gap_start,
                key_end[in_k[last_in]] - tail_start,
                key_end[quiet] - key_first[quiet],
            ]
        )
        n_outside = len(in_k) + int(last_in.sum()) + len(quiet)
        run_val = np.concatenate([np.ones(len(in_k), np.int64), np.zeros(n_outside, np.int64)])
        nonempty = run_len > 0
        run_k, run_start, run_len, run_val = (
            run_k[nonempty],
            run_start[nonempty],
            run_len[nonempty],
            run_val[nonempty],
        )
        order = _order_by(run_k, run_start)
        run_k, run_start, run_len, run_val = (
            run_k[order],
            run_start[order],
            run_len[order],
            run_val[order],
        )

        # A key's first run extends a pending change carried from the previous batch.
        first_run = np.ones(len(run_k), dtype=bool)
        first_run[1:] = run_k[1:] != run_k[:-1]
        extend = first_run & (run_val != s0[run_k]) & (p0[run_k] > 0)
        carry = np.where(extend, p0[run_k], 0)
        effective = run_len + carry

        def run_ms(at: npt.NDArray[np.intp]) -> I64:
            """When runs `at` began: a carried change's first fix, else the run's first."""
            rows = places.row_of(run_start[at])
            return np.where(extend[at], p0_ms[run_k[at]], time_a[rows]).astype(np.int64)

        # Long runs set the state; a long run differing from the previous state is an event.
        long_at = np.flatnonzero(effective >= n_confirm)
        long_k, long_val = run_k[long_at], run_val[long_at]
        same_key = np.zeros(len(long_at), dtype=bool)
        same_key[1:] = long_k[1:] == long_k[:-1]
        before = s0[long_k].copy()
        before[1:] = np.where(same_key[1:], long_val[:-1], before[1:])
        flip = long_val != before
        flip_at = long_at[flip]
        confirm_ord = run_start[flip_at] + (n_confirm - 1 - carry[flip_at])
        flip_ms = run_ms(flip_at)
        events = Transitions(
            device=(keys[run_k[flip_at]] >> _FENCE_BITS).astype(np.int32),
            fence=(keys[run_k[flip_at]] & 0xFFFF_FFFF).astype(np.int32),
            kind=np.where(run_val[flip_at] == 1, ENTER, EXIT).astype(np.uint8),
            time_ms=flip_ms,
            row=places.row_of(confirm_ord),
        )

        # End state per key: set by its last long run; a stay starts at its last enter.
        s_end = s0.copy()
        last_long = np.ones(len(long_k), dtype=bool)
        last_long[:-1] = long_k[1:] != long_k[:-1]
        s_end[long_k[last_long]] = long_val[last_long]
        since = np.where(s0 == 1, since0, 0)
        flip_k = run_k[flip_at]
        last_flip = np.ones(len(flip_k), dtype=bool)
        last_flip[:-1] = flip_k[1:] != flip_k[:-1]
        since[flip_k[last_flip]] = flip_ms[last_flip]
        last_run = np.ones(len(run_k), dtype=bool)
        last_run[:-1] = run_k[1:] != run_k[:-1]
        last_k = run_k[last_run]
        open_change = run_val[last_run] != s_end[last_k]
        open_at = np.flatnonzero(last_run)[open_change]
        pending = np.zeros(len(keys), dtype=np.int64)
        pending_ms = np.zeros(len(keys), dtype=np.int64)
        pending[run_k[open_at]] = effective[open_at]
        pending_ms[run_k[open_at]] = run_ms(open_at)
        keep_key = (s_end == 1) | (pending > 0)
        moved = _State(
            keys[keep_key],
            s_end[keep_key] == 1,
            pending[keep_key],
            pending_ms[keep_key],
            np.where(s_end == 1, since, 0)[keep_key],
        )
        untouched = state.take(~_in_sorted(state.key, keys))
        self._state = _merge(untouched, moved)
        order = _order_by(events.row, events.fence.astype(np.int64))
        return Transitions(
            events.device[order],
            events.fence[order],
            events.kind[order],
            events.time_ms[order],
            events.row[order],
        )

    def inside(self) -> Inside:
        """Every confirmed stay, with its start time, for the bound fence set."""
        state = self._state.take(self._state.inside)
        return Inside(
            device=(state.key >> _FENCE_BITS).astype(np.int32),
            fence=(state.key & 0xFFFF_FFFF).astype(np.int32),
            since_ms=state.since_ms,
        )

    def dwelling(self, now_ms: int, dwell_ms: int) -> Inside:
        """Stays that have lasted at least `dwell_ms` at data time `now_ms` (never the clock)."""
        stays = self.inside()
        due = stays.since_ms + dwell_ms <= now_ms
        return Inside(stays.device[due], stays.fence[due], stays.since_ms[due])

    def _bind(self, fences: FenceSet) -> None:
        old = self._bound
        self._bound = fences
        if old is None or old is fences or old.fences == fences.fences:
            return
        state = self._state
        mapping = np.array([fences.get(f.id) for f in old.fences], dtype=object)
        new_index = np.array([-1 if i is None else i for i in mapping], dtype=np.int64)
        fence_new = new_index[state.key & 0xFFFF_FFFF] if len(new_index) else state.key
        kept = fence_new >= 0
        moved = state.take(kept)
        keys = ((moved.key >> _FENCE_BITS) << _FENCE_BITS) | fence_new[kept]
        order = np.argsort(keys)
        self._state = _State(
            keys[order],
            moved.inside[order],
            moved.pending[order],
            moved.pending_ms[order],
            moved.since_ms[order],
        )


class _Places(Protocol):
    """Rows of a batch against places: each valid row's position once the valid rows are
    grouped by device (stable, so in time order within a device)."""

    devices: I64  # the devices with a valid row, ascending
    first: I64  # each one's first place
    count: I64  # its number of valid rows
    some_invalid: bool

    def order_of(self, rows: I64) -> I64:
        """Values ordering one device's valid rows as their places do."""
        ...

    def place_of(self, rows: I64) -> I64: ...

    def row_of(self, places: I64) -> I64: ...

    def apart(self, earlier: I64, later: I64, same_key: Bools) -> Bools:
        """Where `same_key`: is `later` not the valid row right after `earlier`."""
        ...


class _GroupedPlaces:
    """Rows grouped by device: places follow from the invalid rows alone (a few per cent), with
    no pass over the whole batch beyond finding them."""

    def __init__(
        self, device: npt.NDArray[np.integer[Any]], valid: Bools, change: npt.NDArray[np.intp]
    ) -> None:
        self._valid = valid
        self._bad = np.flatnonzero(~valid)
        self.some_invalid = len(self._bad) > 0
        starts = np.concatenate([np.zeros(1, dtype=np.intp), change])
        ends = np.append(change, len(device))
        first, count = starts, ends - starts
        if self.some_invalid:
            bad_before = np.append(np.searchsorted(self._bad, starts), len(self._bad))
            first = starts - bad_before[:-1]
            count = count - np.diff(bad_before)
        some = count > 0
        self.devices = device[starts[some]].astype(np.int64)
        self.first = first[some].astype(np.int64)
        self.count = count[some].astype(np.int64)
        # Invalid row j (in row order) has bad[j] - j valid rows before it.
        self._valid_before_bad = self._bad - np.arange(len(self._bad))

    def order_of(self, rows: I64) -> I64:
        return rows

    def place_of(self, rows: I64) -> I64:
        if not self.some_invalid:
            return rows
        return rows - np.searchsorted(self._bad, rows)

    def row_of(self, places: I64) -> I64:
        if not self.some_invalid:
            return places
        return places + np.searchsorted(self._valid_before_bad, places, side="right")

    def apart(self, earlier: I64, later: I64, same_key: Bools) -> Bools:
        apart: Bools = (later - earlier) != 1
        if self.some_invalid:
            # A gap of only invalid rows still joins two fixes: possible only where the row
            # after the earlier fix is invalid.
            check = np.flatnonzero(apart & same_key)
            check = check[~self._valid[earlier[check] + 1]]
            if len(check):
                lo, hi = earlier[check], later[check]
                bad = np.searchsorted(self._bad, hi) - np.searchsorted(self._bad, lo, side="right")
                apart[check] = bad != hi - lo - 1
        return apart


class _ShuffledPlaces:
    """Rows of devices interleaved: the valid rows sorted by device, each row's place kept."""

    def __init__(self, device: npt.NDArray[np.integer[Any]], valid: Bools) -> None:
        valid_rows = np.flatnonzero(valid)
        self.some_invalid = len(valid_rows) < len(valid)
        valid_dev = device[valid_rows]
        order = np.argsort(valid_dev, kind="stable")
        self._rows = valid_rows[order].astype(np.int64)
        by_dev = valid_dev[order]
        new_dev = np.ones(len(by_dev), dtype=bool)
        new_dev[1:] = by_dev[1:] != by_dev[:-1]
        self.first = np.flatnonzero(new_dev).astype(np.int64)
        self.devices = by_dev[self.first].astype(np.int64)
        self.count = np.diff(np.append(self.first, len(by_dev))).astype(np.int64)
        self._place = np.full(len(valid), -1, dtype=np.int64)
        self._place[self._rows] = np.arange(len(self._rows))

    def order_of(self, rows: I64) -> I64:
        return self._place[rows]

    def place_of(self, rows: I64) -> I64:
        return self._place[rows]

    def row_of(self, places: I64) -> I64:
        return self._rows[places]

    def apart(self, earlier: I64, later: I64, same_key: Bools) -> Bools:
        return np.asarray(self._place[later] != self._place[earlier] + 1)


def _in_sorted(values: I64, sorted_set: I64) -> Bools:
    """`np.isin(values, sorted_set)` for a sorted, duplicate-free set: one binary search each."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return np.asarray(sorted_set[at] == values)


def _sorted_union(a: I64, b: I64) -> I64:
    """Sorted distinct values of two sorted arrays (a stable sort merges two runs in one pass)."""
    merged = np.sort(np.concatenate([a, b]), kind="stable")
    if len(merged) < 2:
        return merged
    fresh = np.ones(len(merged), dtype=bool)
    fresh[1:] = merged[1:] != merged[:-1]
    return merged[fresh]


def _nondecreasing(values: I64) -> bool:
    return len(values) < 2 or bool(np.all(values[1:] >= values[:-1]))


def _order_by(major: I64, minor: I64, *, ordered_within: bool = False) -> npt.NDArray[np.intp]:
    """The permutation sorting by (major, minor), as `np.lexsort((minor, major))` gives.

    When `minor` already ascends within each `major` value, a stable
    sort of `major` alone does; otherwise one packed key does when it fits in 63 bits. Stable
    sorts also run fast on inputs made of a few sorted runs, as these are.
    """
    if len(major) == 0:
        return np.zeros(0, dtype=np.intp)
    if ordered_within:
        return np.argsort(major, kind="stable")
    low = int(minor.min())
    span = int(minor.max()) - low + 1
    if int(major.min()) >= 0 and int(major.max()) < (1 << 62) // span:
        return np.argsort(major * span + (minor - low), kind="stable")
    return np.lexsort((minor, major))


def _merge(a: _State, b: _State) -> _State:
    key = np.concatenate([a.key, b.key])
    order = np.argsort(key, kind="stable")
    return _State(
        key[order],
        np.concatenate([a.inside, b.inside])[order],
        np.concatenate([a.pending, b.pending])[order],
        np.concatenate([a.pending_ms, b.pending_ms])[order],
        np.concatenate([a.since_ms, b.since_ms])[order],
    )


def _no_events() -> Transitions:
    return Transitions(
        np.zeros(0, np.int32),
        np.zeros(0, np.int32),
        np.zeros(0, np.uint8),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
    )
