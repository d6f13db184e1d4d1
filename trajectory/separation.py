"""`device_separation`: two devices of one vehicle far apart for a while.

Each valid fix is compared with the latest fix of every other device of its vehicle taken within
the pairing window. A pair is *apart* when the distance exceeds the limit even after allowing for
the motion possible between the two fix times (so units 50 m apart on a motorway never look
separated), and *together* when the raw distance is within the limit; otherwise it says nothing.
The incident opens when apart evidence has lasted the duration with no together evidence.

Fixes are only evaluated once every device of the vehicle has reported up to their time (the
vehicle's watermark), so the result does not depend on how the input is cut into batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trajectory.geo import local_m, local_within_m
from trajectory.segments import (
    Ints,
    first_of_device,
    last_of_device,
    last_row_of_each,
    latest_marker,
    run_start_times,
    sort_order,
)
from trajectory.state import grown

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class SeparationSettings:
    distance_m: float = 2000.0
    duration_ms: int = 30 * MINUTE_MS
    window_ms: int = 10 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class SeparationStarts:
    vehicle: Ints
    device: Ints
    time_ms: npt.NDArray[np.int64]
    distance_m: npt.NDArray[np.float64]


_COLUMNS = ("vehicle", "device", "time_ms", "lon", "lat", "speed_kmh")


@dataclass
class SeparationRule:
    settings: SeparationSettings = field(default_factory=SeparationSettings)
    # vehicle -> its devices (slots), -1 padded; only vehicles with two or more devices.
    slots: Ints = field(default_factory=lambda: np.full((0, 2), -1, np.intp))
    last_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    last_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    last_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    last_speed: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    run_start_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    run_device: Ints = field(default_factory=lambda: np.zeros(0, np.int32))
    run_distance_m: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    fired: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    pending: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)
    # per vehicle: its thresholds (`settings` for a vehicle nobody set)
    distance_m: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    duration_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    window_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self._by_slot = np.ascontiguousarray(self.slots.T)

    def set_limits(self, vehicles: list[int], limits: list[SeparationSettings]) -> None:
        """Each vehicle of `vehicles` gets its thresholds."""
        d, n = self.settings, max(vehicles, default=-1) + 1
        self.distance_m = grown(self.distance_m, n, d.distance_m)
        self.duration_ms = grown(self.duration_ms, n, d.duration_ms)
        self.window_ms = grown(self.window_ms, n, d.window_ms)
        self.distance_m[vehicles] = [s.distance_m for s in limits]
        self.duration_ms[vehicles] = [s.duration_ms for s in limits]
        self.window_ms[vehicles] = [s.window_ms for s in limits]

    def set_vehicles(
        self, devices_of: dict[int, list[int]], n_vehicles: int, n_devices: int
    ) -> None:
        """Declares which devices share a vehicle (the fleet)."""
        width = max([2, *(len(d) for d in devices_of.values())])
        slots = np.full((n_vehicles, width), -1, np.intp)  # intp: it indexes device state
        for vehicle, devices in devices_of.items():
            slots[vehicle, : len(devices)] = devices
        self.slots = slots
        self._by_slot = np.ascontiguousarray(slots.T)  # per slot, a contiguous vehicle column
        self.last_ms = grown(self.last_ms, n_devices, -1)
        self.last_lon = grown(self.last_lon, n_devices, 0.0)
        self.last_lat = grown(self.last_lat, n_devices, 0.0)
        self.last_speed = grown(self.last_speed, n_devices, 0.0)
        self.run_start_ms = grown(self.run_start_ms, n_vehicles, -1)
        self.run_device = grown(self.run_device, n_vehicles, -1)
        self.run_distance_m = grown(self.run_distance_m, n_vehicles, 0.0)
        self.fired = grown(self.fired, n_vehicles, False)
        self.distance_m = grown(self.distance_m, n_vehicles, self.settings.distance_m)
        self.duration_ms = grown(self.duration_ms, n_vehicles, self.settings.duration_ms)
        self.window_ms = grown(self.window_ms, n_vehicles, self.settings.window_ms)

    def forget(self, devices: list[int], vehicles: list[int]) -> None:
        """The fleet moved `devices` between `vehicles`: their waiting fixes are dropped and
        those vehicles' runs start again (a run measured a pair that no longer exists)."""
        if self.pending:
            keep = ~np.isin(self.pending["device"], devices)
            self.pending = {k: v[keep] for k, v in self.pending.items()}
        self.run_start_ms[vehicles] = -1
        self.run_device[vehicles] = -1
        self.run_distance_m[vehicles] = 0.0
        self.fired[vehicles] = False

    def fixes(
        self,
        vehicle: Ints,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        speed_kmh: npt.NDArray[np.float32],
        watermark_ms: npt.NDArray[np.float64],
    ) -> SeparationStarts:
        """Adds accepted valid fixes and evaluates those at or below their vehicle's watermark."""
        multi = self._by_slot[1][vehicle] >= 0
        new = dict(
            zip(
                _COLUMNS,
                (
                    vehicle[multi],
                    device[multi],
                    time_ms[multi],
                    lon[multi],
                    lat[multi],
                    speed_kmh[multi].astype(np.float64),
                ),
                strict=True,
            )
        )
        rows = {
            k: np.concatenate([self.pending[k], v]) if self.pending else v for k, v in new.items()
        }
        ready = rows["time_ms"] <= watermark_ms[rows["vehicle"]]
        self.pending = {k: v[~ready] for k, v in rows.items()}
        at = np.flatnonzero(ready)
        at = at[sort_order(rows["vehicle"][at], rows["time_ms"][at], rows["device"][at])]
        return self._evaluate({k: v[at] for k, v in rows.items()})

    def _evaluate(self, r: dict[str, npt.NDArray[np.generic]]) -> SeparationStarts:
        veh = r["vehicle"].astype(np.int32, copy=False)
        dev = r["device"].astype(np.int32, copy=False)
        t = r["time_ms"].astype(np.int64, copy=False)
        lon = r["lon"].astype(np.float64, copy=False)
        lat = r["lat"].astype(np.float64, copy=False)
        speed = r["speed_kmh"].astype(np.float64, copy=False)
        n = len(veh)
        if n == 0:
            return _no_starts()
        distance_m, window_ms = self.distance_m[veh], self.window_ms[veh]
        first_v = first_of_device(veh)
        seg = np.cumsum(first_v) - 1
        apart = np.zeros(n, np.bool_)
        together = np.zeros(n, np.bool_)
        gap_m = np.zeros(n, np.float64)
        for slot in range(self.slots.shape[1]):
            slot_dev = self._by_slot[slot][veh]
            mine = dev == slot_dev
            idx = latest_marker(mine)
            inside = (idx >= 0) & (seg[np.maximum(idx, 0)] == seg)
            j = np.maximum(idx, 0)
            safe = np.maximum(slot_dev, 0)
            o_t = np.where(inside, t[j], self.last_ms[safe])
            o_lon = np.where(inside, lon[j], self.last_lon[safe])
            o_lat = np.where(inside, lat[j], self.last_lat[safe])
            o_speed = np.where(inside, speed[j], self.last_speed[safe])
            usable = (slot_dev >= 0) & ~mine & (o_t >= 0) & (t - o_t <= window_ms)
            # Usable pairs only (a row is never paired with its own device), and the distance
            # itself only where it may part them: two devices of one car are nearly always
            # within the distance, which bounds decide without it. Apart needs the distance less
            # the allowance over it, so past it (or a negative allowance, from bad data).
            u = np.flatnonzero(usable)
            near = local_within_m(lon[u], lat[u], o_lon[u], o_lat[u], distance_m[u])
            together[u[near]] = True
            maybe = ~near | (np.maximum(speed[u], o_speed[u]) < 0) | (t[u] < o_t[u])
            f = u[maybe]
            dist = local_m(lon[f], lat[f], o_lon[f], o_lat[f])
            allowance = np.maximum(speed[f], o_speed[f]) / 3.6 * (t[f] - o_t[f]) / 1000.0
            parted = dist - allowance > distance_m[f]
            f, dist = f[parted], dist[parted]
            apart[f] = True
            gap_m[f] = np.maximum(gap_m[f], dist)
        together &= ~apart
        known = apart | together
        k = np.flatnonzero(known)
        known_start = np.full(n, -1, np.int64)
        known_start[k] = run_start_times(veh[k], t[k], apart[k], self.run_start_ms)
        # Rows without evidence inherit the state of the vehicle's latest evidence.
        src = latest_marker(known | first_v)
        carried_open = self.run_start_ms[veh] >= 0
        src_known = known[src]
        run_ms = np.where(
            src_known, known_start[src], np.where(carried_open, self.run_start_ms[veh], -1)
        )
        in_run = run_ms >= 0
        duration_ms = self.duration_ms[veh]
        reached = in_run & (t - run_ms >= duration_ms)
        prev_reached = np.empty(n, np.bool_)
        prev_reached[1:] = reached[:-1]
        prev_reached = np.where(first_v, self.fired[veh] & carried_open, prev_reached)
        prev_reached &= in_run
        # The run carried in may already have fired (by the timer, while these fixes waited
        # for the watermark): it stays fired for all of its rows.
        already = self.fired[veh] & carried_open & (run_ms == self.run_start_ms[veh])
        opens = np.flatnonzero(reached & ~prev_reached & ~already)
        # The device and distance of each run's first apart evidence (carried if it began in
        # an earlier batch).
        # A run's first row: apart, starting at its own time, and the first such in its vehicle
        # (rows sharing the instant are ordered by device).
        starts_here = np.zeros(n, np.bool_)
        kv, ks = veh[k], known_start[k]
        new_start = np.ones(len(k), np.bool_)
        new_start[1:] = (kv[1:] != kv[:-1]) | (ks[1:] != ks[:-1])
        starts_here[k] = apart[k] & (ks == t[k]) & new_start
        start_row = latest_marker(starts_here)
        src = np.maximum(start_row, 0)
        own = (start_row >= 0) & (veh[src] == veh) & (t[src] == run_ms)
        first_dev = np.where(own[opens], dev[src[opens]], self.run_device[veh[opens]])
        first_gap = np.where(own[opens], gap_m[src[opens]], self.run_distance_m[veh[opens]])
        # Carry per device and per vehicle.
        ld = last_row_of_each(dev)
        self.last_ms[dev[ld]], self.last_lon[dev[ld]] = t[ld], lon[ld]
        self.last_lat[dev[ld]], self.last_speed[dev[ld]] = lat[ld], speed[ld]
        lv = np.flatnonzero(last_of_device(veh))
        v = veh[lv]
        self.run_start_ms[v] = run_ms[lv]
        self.fired[v] = reached[lv] | prev_reached[lv] | already[lv]
        new_run = own[lv] & (run_ms[lv] >= 0)
        self.run_device[v] = np.where(new_run, dev[src[lv]], self.run_device[v])
        self.run_distance_m[v] = np.where(new_run, gap_m[src[lv]], self.run_distance_m[v])
        return SeparationStarts(
            veh[opens], first_dev.astype(np.int32), run_ms[opens] + duration_ms[opens], first_gap
        )

    def advance(self, now_ms: int) -> SeparationStarts:
        """Timer: open runs whose duration the clock has passed."""
        due = (self.run_start_ms >= 0) & ~self.fired
        due &= now_ms - self.run_start_ms >= self.duration_ms
        v = np.flatnonzero(due).astype(np.int32)
        self.fired[v] = True
        return SeparationStarts(
            v,
            self.run_device[v],
            self.run_start_ms[v] + self.duration_ms[v],
            self.run_distance_m[v],
        )


def _no_starts() -> SeparationStarts:
    z32 = np.zeros(0, np.int32)
    return SeparationStarts(z32, z32, np.zeros(0, np.int64), np.zeros(0, np.float64))
