"""Motion state: stops per device, incrementally over batches.

A fix is stationary when the device reports under 5 km/h and is within the stop radius of the
previous fix and of the stop's first fix (the anchor); a run of stationary fixes lasting at
least the minimum time is a stop. Gaps between fixes do not end a stop while the car has not
moved (a sleeping tracker reports rarely), and invalid fixes are never seen here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trajectory.geo import local_within_m
from trajectory.segments import Ints, first_of_device, last_of_device, latest_marker
from trajectory.state import grown

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class StopSettings:
    radius_m: float = 200.0
    min_ms: int = 3 * MINUTE_MS
    still_kmh: float = 5.0


@dataclass(frozen=True, slots=True)
class StopEvents:
    """Stops that ended in this batch (end = first fix away) and the latest row of each
    device still in a stop, with their stops' start and anchor."""

    device: Ints
    start_ms: npt.NDArray[np.int64]
    end_ms: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    open_device: Ints
    open_start_ms: npt.NDArray[np.int64]
    open_last_ms: npt.NDArray[np.int64]
    open_lon: npt.NDArray[np.float64]
    open_lat: npt.NDArray[np.float64]


@dataclass
class StopDetector:
    settings: StopSettings = field(default_factory=StopSettings)
    start_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    anchor_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    anchor_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    last_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    last_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    last_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))

    def ensure(self, n_devices: int) -> None:
        self.start_ms = grown(self.start_ms, n_devices, -1)
        self.anchor_lon = grown(self.anchor_lon, n_devices, 0.0)
        self.anchor_lat = grown(self.anchor_lat, n_devices, 0.0)
        self.last_ms = grown(self.last_ms, n_devices, -1)
        self.last_lon = grown(self.last_lon, n_devices, 0.0)
        self.last_lat = grown(self.last_lat, n_devices, 0.0)

    def fixes(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        speed_kmh: npt.NDArray[np.float32],
    ) -> StopEvents:
        """Accepted valid fixes grouped by device in time order."""
        s = self.settings
        n = len(device)
        if n == 0:
            z32, z64, zf = np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0)
            return StopEvents(z32, z64, z64, zf, zf, z32, z64, z64, zf, zf)
        first = first_of_device(device)
        heads = np.flatnonzero(first)
        prev_lon, prev_lat, prev_ms = np.empty(n), np.empty(n), np.empty(n, np.int64)
        prev_lon[1:], prev_lat[1:], prev_ms[1:] = lon[:-1], lat[:-1], time_ms[:-1]
        d0 = device[heads]
        prev_lon[heads], prev_lat[heads] = self.last_lon[d0], self.last_lat[d0]
        prev_ms[heads] = self.last_ms[d0]
        open_before = self.start_ms[device] >= 0  # a stop carried in from the last batch
        still = (speed_kmh < s.still_kmh) & (prev_ms >= 0)
        # Distances only where they can matter (a moving car's fixes are never still).
        slow = np.flatnonzero(still)
        still[slow] = local_within_m(
            prev_lon[slow], prev_lat[slow], lon[slow], lat[slow], s.radius_m
        )
        # Runs of still fixes; the first fix of a run too far from its anchor breaks it (the
        # fixes after it then start runs of their own, with their own anchors), run after run
        # until none is too far: the result of following the fixes one by one, so it does not
        # depend on where batches are cut.
        while True:
            starts = still & ~_shifted(still, first, open_before)
            mark = latest_marker(starts | first)
            carried = ~starts[mark] & open_before
            # A run begins at the fix before its first still fix: the car arrived there.
            anchor_lon = np.where(carried, self.anchor_lon[device], prev_lon[mark])
            anchor_lat = np.where(carried, self.anchor_lat[device], prev_lat[mark])
            check = np.flatnonzero(still)
            near = local_within_m(
                anchor_lon[check], anchor_lat[check], lon[check], lat[check], s.radius_m
            )
            far = check[~near]
            if len(far):
                _, first_far = np.unique(mark[far], return_index=True)
                still[far[first_far]] = False
                continue
            break
        run_start = np.where(carried, self.start_ms[device], prev_ms[mark])
        in_run = still
        ended = ~in_run & _shifted(in_run, first, open_before)
        end_mark = latest_marker(in_run | first)
        # For each end row, the run that ended: from the previous row.
        prev_row = np.maximum(np.arange(n) - 1, 0)
        e = np.flatnonzero(ended)
        from_batch = ~first[e]
        src = end_mark[prev_row[e]]
        e_start = np.where(from_batch, run_start[np.maximum(src, 0)], self.start_ms[device[e]])
        e_lon = np.where(from_batch, anchor_lon[np.maximum(src, 0)], self.anchor_lon[device[e]])
        e_lat = np.where(from_batch, anchor_lat[np.maximum(src, 0)], self.anchor_lat[device[e]])
        long_enough = time_ms[e] - e_start >= s.min_ms
        e = e[long_enough]
        last = np.flatnonzero(last_of_device(device))
        dl = device[last]
        open_now = in_run[last]
        self.start_ms[dl] = np.where(open_now, run_start[last], -1)
        self.anchor_lon[dl] = np.where(open_now, anchor_lon[last], 0.0)
        self.anchor_lat[dl] = np.where(open_now, anchor_lat[last], 0.0)
        self.last_ms[dl], self.last_lon[dl], self.last_lat[dl] = time_ms[last], lon[last], lat[last]
        o = last[open_now]
        return StopEvents(
            device[e],
            e_start[long_enough],
            time_ms[e],
            e_lon[long_enough],
            e_lat[long_enough],
            device[o],
            run_start[o],
            time_ms[o],
            anchor_lon[o],
            anchor_lat[o],
        )


def _shifted(
    values: npt.NDArray[np.bool_], first: npt.NDArray[np.bool_], carried: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """The previous row's value within each device; the carried value on a device's first row."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    return np.where(first, carried, out)
