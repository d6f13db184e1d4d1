"""`frozen_position`: a tracker repeating one position while the vehicle should be moving.

A live GPS fix wanders by at least the last digit of its coordinates; a tracker replaying a
stored position (tampering, or a jammer with a spoofed fix) repeats it exactly. A fix is
*suspicious* when the ignition is on (JT808 status bit 0) or the reported speed is above the
limit; a parked car with ACC off and no speed may legitimately hold its last fix. The incident
is a run of consecutive accepted valid fixes, all suspicious, with exactly the same coordinates;
it alerts at the run's Nth fix (one alert per run) and ends at the first fix that moves or is no
longer suspicious. Invalid, duplicate, out-of-order and jumped fixes neither count nor break it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trajectory.segments import Ints, first_of_device, last_of_device, latest_marker
from trajectory.state import grown

ACC_BIT = np.uint32(1)


@dataclass(frozen=True, slots=True)
class FrozenSettings:
    fixes: int = 20
    speed_kmh: float = 5.0


@dataclass(frozen=True, slots=True)
class FrozenStarts:
    """Rows (of the fixes given) at which a run reached the count, and each run's start."""

    rows: npt.NDArray[np.intp]
    since_ms: npt.NDArray[np.int64]


@dataclass
class FrozenPositionRule:
    """Per device: the previous accepted fix's coordinates and the open run (count 0: none)."""

    settings: FrozenSettings = field(default_factory=FrozenSettings)
    count: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    since_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    prev_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    prev_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    # per device: its vehicle's thresholds (`settings` for a device nobody set)
    fixes_needed: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    speed_kmh: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))

    def ensure(self, n_devices: int) -> None:
        self.fixes_needed = grown(self.fixes_needed, n_devices, max(1, self.settings.fixes))
        self.speed_kmh = grown(self.speed_kmh, n_devices, self.settings.speed_kmh)
        self.count = grown(self.count, n_devices, 0)
        self.since_ms = grown(self.since_ms, n_devices, -1)
        self.prev_lon = grown(self.prev_lon, n_devices, np.nan)
        self.prev_lat = grown(self.prev_lat, n_devices, np.nan)

    def set_limits(self, devices: slice, limits: list[FrozenSettings]) -> None:
        """Each device of `devices` gets its vehicle's thresholds."""
        self.fixes_needed[devices] = [max(1, s.fixes) for s in limits]
        self.speed_kmh[devices] = [s.speed_kmh for s in limits]

    def fixes(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        speed_kmh: npt.NDArray[np.float32],
        status: npt.NDArray[np.uint32],
    ) -> FrozenStarts:
        """Accepted valid fixes grouped by device in time order."""
        n = len(device)
        if n == 0:
            return FrozenStarts(np.zeros(0, np.intp), np.zeros(0, np.int64))
        first = first_of_device(device)
        last = last_of_device(device)
        suspicious = ((status & ACC_BIT) != 0) | (speed_kmh > self.speed_kmh[device])
        prev_lon = np.empty(n)
        prev_lat = np.empty(n)
        prev_in_run = np.empty(n, np.bool_)
        prev_lon[1:], prev_lat[1:], prev_in_run[1:] = lon[:-1], lat[:-1], suspicious[:-1]
        prev_lon[first] = self.prev_lon[device[first]]
        prev_lat[first] = self.prev_lat[device[first]]
        prev_in_run[first] = self.count[device[first]] > 0
        same = (lon == prev_lon) & (lat == prev_lat)
        continues = prev_in_run & same
        sub: npt.NDArray[np.intp] | None = None
        alone_alerts = self.fixes_needed <= 1
        if not alone_alerts[device].any():
            # Runs are followed only on devices where one goes on (a repeated position is
            # rare): elsewhere each suspicious fix starts a run of one, which cannot alert.
            active = np.zeros(len(self.count), np.bool_)
            active[device[suspicious & continues]] = True
            mine = active[device]
            if not mine.all():
                ends = np.flatnonzero(last & ~mine)
                d_end, alone = device[ends], suspicious[ends]
                self.count[d_end] = alone
                self.since_ms[d_end] = np.where(alone, time_ms[ends], -1)
                self.prev_lon[d_end] = lon[ends]
                self.prev_lat[d_end] = lat[ends]
                sub = np.flatnonzero(mine)
                if len(sub) == 0:
                    return FrozenStarts(np.zeros(0, np.intp), np.zeros(0, np.int64))
                device, time_ms, lon, lat = device[sub], time_ms[sub], lon[sub], lat[sub]
                first, last, suspicious = first[sub], last[sub], suspicious[sub]
                continues = continues[sub]
                n = len(sub)
        starts = suspicious & ~continues
        anchor = latest_marker(starts | first)
        rows = np.arange(n)
        from_batch = starts[anchor]
        count = np.where(from_batch, 0, self.count[device]) + rows - anchor + 1
        count = np.where(suspicious, count, 0)
        since = np.where(from_batch, time_ms[anchor], self.since_ms[device])
        reached = np.flatnonzero(count == self.fixes_needed[device])

        ends = np.flatnonzero(last)
        d_end = device[ends]
        self.count[d_end] = count[ends]
        self.since_ms[d_end] = np.where(count[ends] > 0, since[ends], -1)
        self.prev_lon[d_end] = lon[ends]
        self.prev_lat[d_end] = lat[ends]
        found = reached if sub is None else sub[reached]
        return FrozenStarts(found, since[reached].astype(np.int64))
