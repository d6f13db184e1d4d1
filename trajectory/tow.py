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
    # per device: its vehicle's thresholds (`settings` for a device nobody set)
    speed_kmh: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    duration_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    distance_m: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))

    def ensure(self, n_devices: int) -> None:
        s = self.settings
        self.speed_kmh = grown(self.speed_kmh, n_devices, s.speed_kmh)
        self.duration_ms = grown(self.duration_ms, n_devices, s.duration_ms)
        self.distance_m = grown(self.distance_m, n_devices, s.distance_m)
        self.prev_ms = grown(self.prev_ms, n_devices, -1)
        self.prev_lon = grown(self.prev_lon, n_devices, 0.0)
        self.prev_lat = grown(self.prev_lat, n_devices, 0.0)
        self.run_start_ms = grown(self.run_start_ms, n_devices, -1)
        self.run_lon = grown(self.run_lon, n_devices, 0.0)
        self.run_lat = grown(self.run_lat, n_devices, 0.0)
        self.fired = grown(self.fired, n_devices, False)

    def set_limits(self, devices: slice, limits: list[TowSettings]) -> None:
        """Each device of `devices` gets its vehicle's thresholds."""
        self.speed_kmh[devices] = [s.speed_kmh for s in limits]
        self.duration_ms[devices] = [s.duration_ms for s in limits]
        self.distance_m[devices] = [s.distance_m for s in limits]

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
        limit = self.speed_kmh[device]
        first = first_of_device(device)
        last = last_of_device(device)
        heads = np.flatnonzero(first)
        d_head = device[heads]
        acc_off = (status & ACC_BIT) == 0
        prev_ms = np.empty(n, np.int64)
        prev_lon = np.empty(n)
        prev_lat = np.empty(n)
        prev_ms[1:], prev_lon[1:], prev_lat[1:] = time_ms[:-1], lon[:-1], lat[:-1]
        prev_ms[heads] = self.prev_ms[d_head]
        prev_lon[heads] = self.prev_lon[d_head]
        prev_lat[heads] = self.prev_lat[d_head]
        dt_ms = time_ms - prev_ms
        has_prev = (prev_ms >= 0) & (dt_ms > 0)
        towed = acc_off & (speed_kmh > limit)
        # The implied speed only where it can decide: ACC off, not already fast by the reported
        # speed, and a step whose upper bound could pass the limit (a parked car's noise never
        # can, so the trigonometry runs on a few rows instead of most of them).
        check = np.flatnonzero(acc_off & has_prev & ~towed)
        per_ms = 3_600.0 / np.maximum(dt_ms[check], 1)
        bound = _step_bound_m(prev_lon[check], prev_lat[check], lon[check], lat[check])
        check = check[bound * per_ms > limit[check]]
        step_m = haversine_m(prev_lon[check], prev_lat[check], lon[check], lat[check])
        towed[check] = step_m * 3_600.0 / np.maximum(dt_ms[check], 1) > limit[check]

        # Runs are followed on the towed fixes alone (a few per thousand: GPS noise around a
        # parked car makes most of them, and no run of it lasts). A run starts at a towed fix
        # whose previous fix (of its device, or the last one of the previous batch) was not
        # towed; a device's first towed fixes may go on with the run carried in.
        prev_towed = np.empty(n, np.bool_)
        prev_towed[1:] = towed[:-1]
        prev_towed[heads] = self.run_start_ms[d_head] >= 0
        tr = np.flatnonzero(towed)
        t_dev = device[tr]
        starts = ~prev_towed[tr]
        mark = latest_marker(starts | first_of_device(t_dev))
        from_batch = starts[mark]
        begin = tr[mark]
        start_ms = np.where(from_batch, time_ms[begin], self.run_start_ms[t_dev])
        # The run is measured from where the car stood: the fix before its first one.
        stood = prev_ms[begin] >= 0
        run_lon = np.where(
            from_batch, np.where(stood, prev_lon[begin], lon[begin]), self.run_lon[t_dev]
        )
        run_lat = np.where(
            from_batch, np.where(stood, prev_lat[begin], lat[begin]), self.run_lat[t_dev]
        )
        lasting = np.flatnonzero(time_ms[tr] - start_ms >= self.duration_ms[t_dev])
        moved_m = np.zeros(len(tr))
        at = tr[lasting]
        moved_m[lasting] = haversine_m(run_lon[lasting], run_lat[lasting], lon[at], lat[at])
        reached = np.zeros(len(tr), np.bool_)
        reached[lasting] = moved_m[lasting] >= self.distance_m[t_dev[lasting]]

        # ACC-off periods: each ACC-on fix (and each device's first row) begins a segment; the
        # first segment of a device continues the period carried from the previous batch when
        # its head is not an ACC-on fix.
        acc_on = ~acc_off
        seg = np.cumsum(first | acc_on) - 1

        def continues_carried(rows: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
            head = heads[np.searchsorted(heads, rows, side="right") - 1]
            return np.asarray((seg[rows] == seg[head]) & ~acc_on[head], np.bool_)

        reached_at = np.flatnonzero(reached)
        reached_rows = tr[reached_at]
        reached_seg = seg[reached_rows]
        _, first_in_seg = np.unique(reached_seg, return_index=True)
        opening = reached_at[first_in_seg]
        opens = tr[opening]
        keep = ~(self.fired[device[opens]] & continues_carried(opens))
        opens, opening = opens[keep], opening[keep]

        # State after the batch, from each device's last row.
        ends = np.flatnonzero(last)
        d_end = device[ends]
        self.fired[d_end] = np.isin(seg[ends], reached_seg) | (
            self.fired[d_end] & continues_carried(ends)
        )
        self.prev_ms[d_end] = time_ms[ends]
        self.prev_lon[d_end] = lon[ends]
        self.prev_lat[d_end] = lat[ends]
        # A run open at a device's last row carries on; the anchor of the device's latest run
        # begun here is kept either way (as the per-row columns once did).
        last_towed = np.flatnonzero(last_of_device(t_dev))
        d_towed = t_dev[last_towed]
        self.run_start_ms[d_end] = -1
        open_now = last[tr[last_towed]]
        self.run_start_ms[d_towed[open_now]] = start_ms[last_towed[open_now]]
        begun = from_batch[last_towed]
        self.run_lon[d_towed[begun]] = run_lon[last_towed[begun]]
        self.run_lat[d_towed[begun]] = run_lat[last_towed[begun]]
        return TowStarts(opens, start_ms[opening], moved_m[opening])


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
