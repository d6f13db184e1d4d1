"""`overspeed`: valid fixes above the limit spanning at least the minimum duration.

Evidence, not a timer: a run of fixes above the limit must itself span the duration, so 125 km/h
for 30 s never alerts whatever the reporting interval. The episode opens at run start + duration
and closes at the first valid fix at or below the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trajectory.segments import Ints, first_of_device, last_of_device, run_start_times
from trajectory.state import grown


@dataclass(frozen=True, slots=True)
class EpisodeEdges:
    """Episode starts and ends of one rule, per device, in a batch."""

    start_device: Ints
    start_ms: npt.NDArray[np.int64]
    start_value: npt.NDArray[np.float64]
    end_device: Ints
    end_ms: npt.NDArray[np.int64]


@dataclass
class OverspeedRule:
    limit_kmh: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    duration_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    run_start_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    fired: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))

    def ensure(self, n_devices: int, limit_kmh: float, duration_ms: int) -> None:
        self.limit_kmh = grown(self.limit_kmh, n_devices, limit_kmh)
        self.duration_ms = grown(self.duration_ms, n_devices, duration_ms)
        self.run_start_ms = grown(self.run_start_ms, n_devices, -1)
        self.fired = grown(self.fired, n_devices, False)

    def fixes(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        speed_kmh: npt.NDArray[np.float32],
    ) -> EpisodeEdges:
        """Accepted valid fixes grouped by device in time order."""
        n = len(device)
        if n == 0:
            z32, z64 = np.zeros(0, np.int32), np.zeros(0, np.int64)
            return EpisodeEdges(z32, z64, np.zeros(0, np.float64), z32, z64)
        fast = speed_kmh > self.limit_kmh[device]
        # Only devices with a fast fix or an open run can start or end anything (a device
        # without either has no run and has not fired, and keeps that state).
        active = self.run_start_ms >= 0
        active[device[fast]] = True
        mine = active[device]
        if not mine.all():
            sub = np.flatnonzero(mine)
            device, time_ms, speed_kmh, fast = device[sub], time_ms[sub], speed_kmh[sub], fast[sub]
            n = len(sub)
        start_ms = run_start_times(device, time_ms, fast, self.run_start_ms)
        reached = fast & (time_ms - start_ms >= self.duration_ms[device])
        first = first_of_device(device)
        prev_reached = np.empty(n, np.bool_)
        prev_reached[1:] = reached[:-1]
        carried = self.fired[device] & (self.run_start_ms[device] >= 0)
        prev_reached = np.where(first, carried, prev_reached)
        opens = np.flatnonzero(reached & ~prev_reached)
        closes = np.flatnonzero(~fast & prev_reached)
        last = last_of_device(device)
        self.run_start_ms[device[last]] = start_ms[last]
        self.fired[device[last]] = reached[last]
        return EpisodeEdges(
            device[opens],
            start_ms[opens] + self.duration_ms[device[opens]],
            speed_kmh[opens].astype(np.float64),
            device[closes],
            time_ms[closes],
        )

    def known_through_ms(self, n_devices: int) -> npt.NDArray[np.float64]:
        """Per device, the time up to which its edges are final: a fast run not yet long
        enough may still open an episode at run start + duration (dated before later invalid
        reports); inf elsewhere."""
        known = np.full(n_devices, np.inf)
        start = self.run_start_ms[:n_devices]
        open_run = (start >= 0) & ~self.fired[:n_devices]
        known[open_run] = start[open_run] + self.duration_ms[:n_devices][open_run] - 1
        return known
