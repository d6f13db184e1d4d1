"""Vehicle-level silences beyond the contract: `all_devices_offline` and `partial_offline`.

Both read the vehicle's merged report stream (every device's reports in time order), which is
only final up to the vehicle's watermark: reports wait until every device of the vehicle has
reported past them, as in device_separation, so batching does not change the result.
- all_devices_offline: no report from any device of the vehicle for 6 h when its last report
  was moving, 24 h when it was parked; time = that last report + threshold.
- partial_offline: one device silent for 2 h while another device of the same vehicle reports
  after that moment (a unit removed, the other still in the car); time = last report + 2 h.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from trajectory.segments import (
    Ints,
    first_of_device,
    last_of_device,
    last_row_of_each,
    latest_marker,
    sort_order,
)
from trajectory.state import grown, held

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class VehicleSilenceSettings:
    moving_after_ms: int = 6 * HOUR_MS
    parked_after_ms: int = 24 * HOUR_MS
    partial_after_ms: int = 2 * HOUR_MS
    moving_kmh: float = 5.0


@dataclass(frozen=True, slots=True)
class SilenceAlerts:
    """(vehicle, device, time) of each alert; device is the silent one (or the last reporter)."""

    vehicle: Ints
    device: Ints
    time_ms: npt.NDArray[np.int64]
    last_ms: npt.NDArray[np.int64]


def _none() -> SilenceAlerts:
    z32, z64 = np.zeros(0, np.int32), np.zeros(0, np.int64)
    return SilenceAlerts(z32, z32, z64, z64)


@dataclass
class VehicleSilenceRule:
    settings: VehicleSilenceSettings = field(default_factory=VehicleSilenceSettings)
    slots: Ints = field(default_factory=lambda: np.full((0, 2), -1, np.intp))
    # Per vehicle: the latest report below the watermark, whether it was moving, alerted.
    last_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    last_device: Ints = field(default_factory=lambda: np.zeros(0, np.int32))
    last_moving: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    all_alerted: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    # Per device: its latest report below the watermark, and whether its silence was alerted.
    device_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    partial_alerted: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    pending: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)
    # per vehicle (and per device for partial_offline): thresholds (`settings` by default)
    moving_after_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    parked_after_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    partial_after_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self._by_slot = np.ascontiguousarray(self.slots.T)

    def set_limits(
        self, vehicles: list[int], devices: list[int], limits: list[VehicleSilenceSettings]
    ) -> None:
        """Device `devices[i]` of vehicle `vehicles[i]` gets `limits[i]` (its vehicle's)."""
        d = self.settings
        n = max(vehicles, default=-1) + 1
        self.moving_after_ms = grown(self.moving_after_ms, n, d.moving_after_ms)
        self.parked_after_ms = grown(self.parked_after_ms, n, d.parked_after_ms)
        n = max(devices, default=-1) + 1
        self.partial_after_ms = grown(self.partial_after_ms, n, d.partial_after_ms)
        self.moving_after_ms[vehicles] = [s.moving_after_ms for s in limits]
        self.parked_after_ms[vehicles] = [s.parked_after_ms for s in limits]
        self.partial_after_ms[devices] = [s.partial_after_ms for s in limits]

    def set_vehicles(self, slots: Ints, n_devices: int) -> None:
        self.slots = slots
        self._by_slot = np.ascontiguousarray(slots.T)  # per slot, a contiguous vehicle column
        n_vehicles = len(slots)
        self.last_ms = grown(self.last_ms, n_vehicles, -1)
        self.last_device = grown(self.last_device, n_vehicles, -1)
        self.last_moving = grown(self.last_moving, n_vehicles, False)
        self.all_alerted = grown(self.all_alerted, n_vehicles, False)
        self.device_ms = grown(self.device_ms, n_devices, -1)
        self.partial_alerted = grown(self.partial_alerted, n_devices, False)
        s = self.settings
        self.moving_after_ms = grown(self.moving_after_ms, n_vehicles, s.moving_after_ms)
        self.parked_after_ms = grown(self.parked_after_ms, n_vehicles, s.parked_after_ms)
        self.partial_after_ms = grown(self.partial_after_ms, n_devices, s.partial_after_ms)

    def forget(self, devices: list[int]) -> None:
        """The fleet moved `devices` to other vehicles: their reports still waiting for the
        old vehicle's watermark are dropped (their own silence state is kept)."""
        if self.pending:
            keep = ~np.isin(self.pending["device"], devices)
            self.pending = {k: v[keep] for k, v in self.pending.items()}

    def reports(
        self,
        vehicle: Ints,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        speed_kmh: npt.NDArray[np.float32],
        watermark_ms: npt.NDArray[np.float64],
    ) -> tuple[SilenceAlerts, SilenceAlerts]:
        """Adds reports (grouped by device, in time order); returns (all_devices_offline,
        partial_offline) found below the watermarks."""
        moving = speed_kmh > self.settings.moving_kmh
        # A one-device vehicle's reports are final and already in order: no buffer, no sort.
        alone = self._by_slot[1][vehicle] < 0
        new: dict[str, npt.NDArray[Any]] = {
            "vehicle": vehicle[~alone],
            "device": device[~alone],
            "time_ms": time_ms[~alone],
            "moving": moving[~alone],
        }
        rows = {
            k: np.concatenate([self.pending[k], v]) if self.pending else v for k, v in new.items()
        }
        ready = rows["time_ms"] <= watermark_ms[rows["vehicle"]]
        self.pending = {k: v[~ready] for k, v in rows.items()}
        at = np.flatnonzero(ready)
        at = at[sort_order(rows["vehicle"][at], rows["time_ms"][at], rows["device"][at])]
        r = {k: v[at] for k, v in rows.items()}
        shared_veh = r["vehicle"].astype(np.int32, copy=False)
        shared_dev = r["device"].astype(np.int32, copy=False)
        shared_t = r["time_ms"].astype(np.int64, copy=False)
        veh = np.concatenate([vehicle[alone], shared_veh])
        dev = np.concatenate([device[alone], shared_dev])
        t = np.concatenate([time_ms[alone], shared_t])
        was_moving = np.concatenate([moving[alone], r["moving"].astype(np.bool_, copy=False)])
        if len(veh) == 0:
            return _none(), _none()
        partial = self._partial(shared_veh, shared_dev, shared_t) if len(shared_veh) else _none()
        return self._all(veh, dev, t, was_moving), partial

    def _all(
        self,
        veh: Ints,
        dev: Ints,
        t: npt.NDArray[np.int64],
        moving: npt.NDArray[np.bool_],
    ) -> SilenceAlerts:
        first = first_of_device(veh)
        prev_t = np.empty_like(t)
        prev_t[1:] = t[:-1]
        prev_t[first] = self.last_ms[veh[first]]
        prev_moving = np.empty_like(moving)
        prev_moving[1:] = moving[:-1]
        prev_moving[first] = self.last_moving[veh[first]]
        prev_dev = np.empty_like(dev)
        prev_dev[1:] = dev[:-1]
        prev_dev[first] = self.last_device[veh[first]]
        after = np.where(prev_moving, self.moving_after_ms[veh], self.parked_after_ms[veh])
        gap = (prev_t >= 0) & (t - prev_t >= after) & ~(first & self.all_alerted[veh])
        rows = np.flatnonzero(gap)
        last = last_of_device(veh)
        v = veh[last]
        self.all_alerted[v] &= t[last] <= self.last_ms[v]
        self.last_ms[v], self.last_moving[v], self.last_device[v] = t[last], moving[last], dev[last]
        return SilenceAlerts(veh[rows], prev_dev[rows], prev_t[rows] + after[rows], prev_t[rows])

    def _partial(
        self,
        veh: Ints,
        dev: Ints,
        t: npt.NDArray[np.int64],
    ) -> SilenceAlerts:
        seg = np.cumsum(first_of_device(veh)) - 1
        found: list[
            tuple[
                Ints,
                Ints,
                npt.NDArray[np.int64],
            ]
        ] = []
        alerted_rows: list[npt.NDArray[np.intp]] = []  # silences that began in this batch
        alerted_carried: list[Ints] = []  # silences carried in, by device
        for slot in range(self.slots.shape[1]):
            silent = self._by_slot[slot][veh]
            mine = dev == silent
            idx = latest_marker(mine)
            same = (idx >= 0) & (seg[np.maximum(idx, 0)] == seg)
            safe = np.maximum(silent, 0)
            last_ms = np.where(same, t[np.maximum(idx, 0)], self.device_ms[safe])
            after = self.partial_after_ms[safe]
            hit = np.flatnonzero((silent >= 0) & ~mine & (last_ms >= 0) & (t - last_ms >= after))
            if len(hit) == 0:
                continue
            # One alert per silence: the first report of another device past its deadline.
            silence = np.where(same[hit], idx[hit], -1 - seg[hit])
            first = np.ones(len(hit), np.bool_)
            first[1:] = silence[1:] != silence[:-1]
            hit = hit[first]
            carried = ~same[hit]
            chosen = hit[~(carried & self.partial_alerted[safe[hit]])]
            found.append((veh[chosen], silent[chosen], last_ms[chosen] + after[chosen]))
            alerted_rows.append(idx[hit[~carried]])
            alerted_carried.append(silent[hit[carried]])
        if alerted_carried:
            self.partial_alerted[np.concatenate(alerted_carried)] = True
        last_rows = last_row_of_each(dev)
        self.device_ms[dev[last_rows]] = t[last_rows]
        began = np.concatenate(alerted_rows) if alerted_rows else np.zeros(0, np.intp)
        self.partial_alerted[dev[last_rows]] = np.isin(last_rows, began)
        if not found:
            return _none()
        time_ms = np.concatenate([f[2] for f in found])
        silent_dev = np.concatenate([f[1] for f in found])
        return SilenceAlerts(
            np.concatenate([f[0] for f in found]),
            silent_dev,
            time_ms,
            time_ms - self.partial_after_ms[silent_dev],
        )

    def hold(self, from_ms: int, to_ms: int) -> None:
        """No time from `from_ms` to `to_ms` counts towards a silence (`state.held`)."""
        held(self.last_ms, (self.last_ms >= 0) & ~self.all_alerted, from_ms, to_ms)
        held(self.device_ms, (self.device_ms >= 0) & ~self.partial_alerted, from_ms, to_ms)

    def advance(self, now_ms: int) -> SilenceAlerts:
        """Timer for all_devices_offline: vehicles silent past their threshold at `now_ms`."""
        after = np.where(self.last_moving, self.moving_after_ms, self.parked_after_ms)
        due = (self.last_ms >= 0) & ~self.all_alerted & (now_ms - self.last_ms >= after)
        v = np.flatnonzero(due).astype(np.int32)
        self.all_alerted[v] = True
        return SilenceAlerts(v, self.last_device[v], self.last_ms[v] + after[v], self.last_ms[v])
