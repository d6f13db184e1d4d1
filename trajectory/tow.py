"""`tow`: a vehicle moving while its ignition is off (JT808 status bit 0, ACC, clear).

A valid fix is *towed* when ACC is off and the vehicle moves: the reported speed, or the speed
implied by the previous accepted valid fix, is above the limit (either counts, so a tracker that
reports 0 km/h while its positions travel is still caught). A run of consecutive towed fixes
opens the incident at the first fix that is both at least the duration after the run's first
fix and at least the distance (straight line) from where the car stood: the fix before the
run's first one. The distance keeps GPS noise around a parked car, whose implied speed can be
high over short intervals, from ever counting; measuring it from where the car stood keeps an
outlier fix, whose way out and way back both imply speed, from counting either.

One alert per incident: the incident lasts while ACC stays off (a pause at a junction or on the
truck does not split a tow) and ends at the first valid fix with ACC on. Only accepted valid
fixes count: invalid, duplicate, out-of-order and jumped fixes neither move nor end anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from positions.geo import M_PER_DEG_LAT, haversine_m
from trajectory.segments import (
    Ints,
    first_of_device,
    last_of_device,
    latest_marker,
    run_start_times,
)
from trajectory.state import grown

ACC_BIT = np.uint32(1)


@dataclass(frozen=True, slots=True)
class TowSettings:
    speed_kmh: float = 20.0
    duration_ms: int = 2 * 60_000
    distance_m: float = 500.0


@dataclass(frozen=True, slots=True)
class TowStarts:
    """Rows (of the fixes given) that opened a tow incident, with the evidence."""

    rows: npt.NDArray[np.intp]
    since_ms: npt.NDArray[np.int64]
    distance_m: npt.NDArray[np.float64]


@dataclass
class TowRule:
    """Per device: the previous accepted fix, the open towed run and whether this ACC-off
    period has alerted already."""

    settings: TowSettings = field(default_factory=TowSettings)
    prev_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    prev_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    prev_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    run_start_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    run_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    run_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    fired: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))

    def ensure(self, n_devices: int) -> None:
        self.prev_ms = grown(self.prev_ms, n_devices, -1)
        self.prev_lon = grown(self.prev_lon, n_devices, 0.0)
        self.prev_lat = grown(self.prev_lat, n_devices, 0.0)
        self.run_start_ms = grown(self.run_start_ms, n_devices, -1)
        self.run_lon = grown(self.run_lon, n_devices, 0.0)
        self.run_lat = grown(self.run_lat, n_devices, 0.0)
        self.fired = grown(self.fired, n_devices, False)

    def fixes(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        speed_kmh: npt.NDArray[np.float32],
        status: npt.NDArray[np.uint32],
    ) -> TowStarts:
        """Accepted valid fixes grouped by device in time order."""
        n = len(device)
        if n == 0:
            return TowStarts(np.zeros(0, np.intp), np.zeros(0, np.int64), np.zeros(0))
        s = self.settings
        first = first_of_device(device)
        last = last_of_device(device)
        acc_off = (status & ACC_BIT) == 0
        prev_ms = np.empty(n, np.int64)
        prev_lon = np.empty(n)
        prev_lat = np.empty(n)
        prev_ms[1:], prev_lon[1:], prev_lat[1:] = time_ms[:-1], lon[:-1], lat[:-1]
        prev_ms[first] = self.prev_ms[device[first]]
        prev_lon[first] = self.prev_lon[device[first]]
        prev_lat[first] = self.prev_lat[device[first]]
        dt_ms = time_ms - prev_ms
        has_prev = (prev_ms >= 0) & (dt_ms > 0)
        towed = acc_off & (speed_kmh > s.speed_kmh)
        # The implied speed only where it can decide: ACC off, not already fast by the reported
        # speed, and a step whose upper bound could pass the limit (a parked car's noise never
        # can, so the trigonometry runs on a few rows instead of most of them).
        check = np.flatnonzero(acc_off & has_prev & ~towed)
        per_ms = 3_600.0 / np.maximum(dt_ms[check], 1)
        bound = _step_bound_m(prev_lon[check], prev_lat[check], lon[check], lat[check])
        check = check[bound * per_ms > s.speed_kmh]
        step_m = haversine_m(prev_lon[check], prev_lat[check], lon[check], lat[check])
        towed[check] = step_m * 3_600.0 / np.maximum(dt_ms[check], 1) > s.speed_kmh

        # A device with no towed fix and no open run has nothing to start or measure (a tow
        # is rare): it only carries its newest fix and, past an ACC-on fix, leaves the ACC-off
        # period that may have alerted. The runs below are followed for the other devices.
        active = self.run_start_ms >= 0
        active[device[towed]] = True
        mine = active[device]
        sub: npt.NDArray[np.intp] | None = None
        if not mine.all():
            ends = np.flatnonzero(last & ~mine)
            d_end = device[ends]
            acc_on_seen = np.zeros(len(active), np.bool_)
            acc_on_seen[device[~acc_off]] = True
            self.fired[d_end] = self.fired[d_end] & ~acc_on_seen[d_end]
            self.prev_ms[d_end] = time_ms[ends]
            self.prev_lon[d_end] = lon[ends]
            self.prev_lat[d_end] = lat[ends]
            sub = np.flatnonzero(mine)
            if len(sub) == 0:
                return TowStarts(np.zeros(0, np.intp), np.zeros(0, np.int64), np.zeros(0))
            device, time_ms, lon, lat = device[sub], time_ms[sub], lon[sub], lat[sub]
            first, last, acc_off, towed = first[sub], last[sub], acc_off[sub], towed[sub]
            prev_ms, prev_lon, prev_lat = prev_ms[sub], prev_lon[sub], prev_lat[sub]
            n = len(sub)

        start_ms = run_start_times(device, time_ms, towed, self.run_start_ms)
        starts = towed & ~_continues(first, towed, self.run_start_ms[device] >= 0)
        anchor = latest_marker(starts | first)
        from_batch = starts[anchor]
        # The run is measured from where the car stood: the fix before its first one.
        stood = prev_ms >= 0
        start_lon = np.where(stood, prev_lon, lon)[anchor]
        start_lat = np.where(stood, prev_lat, lat)[anchor]
        run_lon = np.where(from_batch, start_lon, self.run_lon[device])
        run_lat = np.where(from_batch, start_lat, self.run_lat[device])
        lasting = np.flatnonzero(towed & (time_ms - start_ms >= s.duration_ms))
        moved_m = np.zeros(n)
        moved_m[lasting] = haversine_m(
            run_lon[lasting], run_lat[lasting], lon[lasting], lat[lasting]
        )
        reached = np.zeros(n, np.bool_)
        reached[lasting] = moved_m[lasting] >= s.distance_m

        # ACC-off periods: each ACC-on fix (and each device's first row) begins a segment; the
        # first segment of a device continues the period carried from the previous batch.
        acc_on = ~acc_off
        seg = np.cumsum(first | acc_on) - 1
        # No ACC-on fix at or before the row in its device: the latest such fix or device head
        # is not an ACC-on fix.
        continues_carried = ~acc_on[latest_marker(acc_on | first)]
        reached_rows = np.flatnonzero(reached)
        _, first_in_seg = np.unique(seg[reached_rows], return_index=True)
        opens = reached_rows[first_in_seg]
        opens = opens[~(self.fired[device[opens]] & continues_carried[opens])]

        # State after the batch, from each device's last row.
        ends = np.flatnonzero(last)
        d_end = device[ends]
        seg_reached = np.zeros(int(seg[-1]) + 1, np.bool_)
        seg_reached[seg[reached_rows]] = True
        self.fired[d_end] = seg_reached[seg[ends]] | (self.fired[d_end] & continues_carried[ends])
        self.prev_ms[d_end] = time_ms[ends]
        self.prev_lon[d_end] = lon[ends]
        self.prev_lat[d_end] = lat[ends]
        self.run_start_ms[d_end] = start_ms[ends]
        self.run_lon[d_end] = run_lon[ends]
        self.run_lat[d_end] = run_lat[ends]
        return TowStarts(opens if sub is None else sub[opens], start_ms[opens], moved_m[opens])


def _step_bound_m(
    lon1: npt.NDArray[np.float64],
    lat1: npt.NDArray[np.float64],
    lon2: npt.NDArray[np.float64],
    lat2: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """An upper bound of `haversine_m` for each pair, with no trigonometry: a great circle is no
    longer than the way along the meridian and then along the parallel, R (|dlat| + |dlon|) in
    radians; the margins are far above the rounding error of either side."""
    bound = np.abs(lat2 - lat1)
    bound += np.abs(lon2 - lon1)
    bound *= M_PER_DEG_LAT * (1.0 + 1e-9)
    bound += 1e-6
    return bound


def _continues(
    first: npt.NDArray[np.bool_], cond: npt.NDArray[np.bool_], carried: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Whether each row's previous row (of the same device, or the carried state) had `cond`."""
    prev = np.empty(len(cond), np.bool_)
    if len(cond):
        prev[0] = False
        prev[1:] = cond[:-1]
    return np.where(first, carried, prev)
