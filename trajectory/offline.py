"""`offline`: no report from a device for a while; one alert per silence.

A silence is alerted either when the next report shows the gap, or when the clock passes the
deadline first (`advance`); the alert time is last report + threshold either way, and a silence
alerted by the clock is not alerted again when the device comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trajectory.segments import Ints, first_of_device, last_of_device
from trajectory.state import grown, held

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Silences:
    """Silences found: the device, its last report and the alert time."""

    device: Ints
    last_ms: npt.NDArray[np.int64]
    alert_ms: npt.NDArray[np.int64]


@dataclass
class OfflineRule:
    """`after_ms[device]` is the device's threshold (per-tenant and per-product settings)."""

    after_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    last_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    alerted: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))

    def ensure(self, n_devices: int, default_after_ms: int) -> None:
        self.after_ms = grown(self.after_ms, n_devices, default_after_ms)
        self.last_ms = grown(self.last_ms, n_devices, -1)
        self.alerted = grown(self.alerted, n_devices, False)

    def reports(self, device: Ints, time_ms: npt.NDArray[np.int64]) -> Silences:
        """Reports grouped by device in time order; returns the gaps at or over the threshold."""
        if len(device) == 0:
            return _no_silences()
        first = first_of_device(device)
        prev = np.empty_like(time_ms)
        prev[1:] = time_ms[:-1]
        prev[first] = self.last_ms[device[first]]
        after = self.after_ms[device]
        gap = (prev >= 0) & (time_ms - prev >= after)
        gap &= ~(first & self.alerted[device])
        rows = np.flatnonzero(gap)
        last = last_of_device(device)
        d = device[last]
        # A report at the very time of the last one ends no silence (nor reopens one).
        self.alerted[d] &= time_ms[last] <= self.last_ms[d]
        self.last_ms[d] = time_ms[last]
        return Silences(device[rows], prev[rows], prev[rows] + after[rows])

    def hold(self, from_ms: int, to_ms: int) -> None:
        """No time from `from_ms` to `to_ms` counts towards a silence (`state.held`)."""
        held(self.last_ms, (self.last_ms >= 0) & ~self.alerted, from_ms, to_ms)

    def advance(self, now_ms: int) -> Silences:
        """Silences whose deadline the clock has reached and that were not alerted yet."""
        n = len(self.last_ms)
        due = (self.last_ms[:n] >= 0) & ~self.alerted[:n]
        due &= now_ms - self.last_ms[:n] >= self.after_ms[:n]
        rows = np.flatnonzero(due).astype(np.int32)
        self.alerted[rows] = True
        return Silences(rows, self.last_ms[rows], self.last_ms[rows] + self.after_ms[rows])


def _no_silences() -> Silences:
    return Silences(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64))
