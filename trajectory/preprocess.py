"""Pre-processing: flag what the rules must not see, and count it.

Out-of-order and duplicate rows move no rule state at all. Invalid, future and bad-time fixes,
and those whose device clock is reset or stuck (trajectory.clock), still count as reports (alarm
bits) but not as positions. The glitch gate compares each
valid fix with the device's last *accepted* fix, so the fix after a jump is measured from the
same reference; after several mutually consistent jumped fixes the gate re-anchors there (a
tracker that really moved, or a first fix that was itself a glitch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from positions import Flag
from positions.geo import M_PER_DEG_LAT
from trajectory.geo import haversine_m, haversine_scalar_m
from trajectory.segments import Ints, first_of_device, last_of_device
from trajectory.state import grown

POSITIONED_BIT = np.uint32(1 << 1)
DAY_MS = 86_400_000
_NO_TIME = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class GateSettings:
    """Thresholds of the pre-processing steps."""

    max_speed_kmh: float = 250.0
    reanchor_fixes: int = 3
    future_ms: int = DAY_MS


@dataclass(slots=True)
class PreprocessCounts:
    """How many rows each step flagged, for the run summary and metrics."""

    out_of_order: int = 0
    duplicate: int = 0
    invalid: int = 0
    future: int = 0
    gps_jump: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "out_of_order": self.out_of_order,
            "duplicate": self.duplicate,
            "invalid": self.invalid,
            "future": self.future,
            "gps_jump": self.gps_jump,
        }


@dataclass(frozen=True, slots=True)
class Preprocessed:
    """Flags for a device-grouped batch, and the rows that opened a gps_jump incident."""

    flags: npt.NDArray[np.uint16]
    jump_rows: npt.NDArray[np.intp]
    jump_speed_kmh: npt.NDArray[np.float64]


NOT_A_REPORT = np.uint16(Flag.OUT_OF_ORDER | Flag.DUPLICATE)
NOT_A_FIX = np.uint16(
    Flag.OUT_OF_ORDER
    | Flag.DUPLICATE
    | Flag.INVALID_FIX
    | Flag.FUTURE
    | Flag.BAD_TIME
    | Flag.CLOCK_RESET
    | Flag.CLOCK_STUCK
    | Flag.IMPLAUSIBLE
)


@dataclass
class Preprocessor:
    """Carries, per device, the newest time seen and the glitch gate's reference fix."""

    settings: GateSettings = field(default_factory=GateSettings)
    counts: PreprocessCounts = field(default_factory=PreprocessCounts)
    last_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    ref_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    ref_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    ref_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    in_jump: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    # The run of mutually consistent jumped fixes that may become the new reference.
    run_count: Ints = field(default_factory=lambda: np.zeros(0, np.int32))
    run_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    run_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    run_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))

    def ensure(self, n_devices: int) -> None:
        self.last_ms = grown(self.last_ms, n_devices, _NO_TIME)
        self.ref_ms = grown(self.ref_ms, n_devices, -1)
        self.ref_lon = grown(self.ref_lon, n_devices, 0.0)
        self.ref_lat = grown(self.ref_lat, n_devices, 0.0)
        self.in_jump = grown(self.in_jump, n_devices, False)
        self.run_count = grown(self.run_count, n_devices, 0)
        self.run_ms = grown(self.run_ms, n_devices, -1)
        self.run_lon = grown(self.run_lon, n_devices, 0.0)
        self.run_lat = grown(self.run_lat, n_devices, 0.0)

    def apply(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        recv_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        status: npt.NDArray[np.uint32],
        flags: npt.NDArray[np.uint16],
    ) -> Preprocessed:
        """Flags rows grouped by device in arrival order; updates the carried state."""
        flags = flags.copy()
        if len(device) == 0:
            return Preprocessed(flags, np.zeros(0, np.intp), np.zeros(0, np.float64))
        self.ensure(int(device.max()) + 1)
        self._flag_order(device, time_ms, flags)
        report = (flags & NOT_A_REPORT) == 0

        bad_fix = ((status & POSITIONED_BIT) == 0) | ((lat == 0.0) & (lon == 0.0))
        # Out of range, infinite or NaN (NaN compares false): one test each.
        bad_fix |= ~((np.abs(lat) <= 90.0) & (np.abs(lon) <= 180.0))
        bad_fix &= report
        flags[bad_fix] |= np.uint16(Flag.INVALID_FIX)
        future = report & (time_ms > recv_ms + self.settings.future_ms)
        flags[future] |= np.uint16(Flag.FUTURE)
        self.counts.invalid += int(bad_fix.sum())
        self.counts.future += int(future.sum())

        candidates = np.flatnonzero((flags & NOT_A_FIX) == 0)
        jump_rows, jump_speed = self._gate(
            device[candidates], time_ms[candidates], lon[candidates], lat[candidates]
        )
        jumped = candidates[jump_rows[0]]
        flags[jumped] |= np.uint16(Flag.IMPLAUSIBLE)
        self.counts.gps_jump += len(jumped)
        return Preprocessed(flags, candidates[jump_rows[1]], jump_speed)

    def _flag_order(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        flags: npt.NDArray[np.uint16],
    ) -> None:
        """Out of order: older than the newest time already seen for the device; duplicate:
        equal to it."""
        first = first_of_device(device)
        heads = np.flatnonzero(first)
        # The newest time each device had before the batch, where it had one.
        carried = self.last_ms[device[heads]]
        known = carried != _NO_TIME
        lo = int(min(time_ms.min(), carried[known].min(initial=time_ms.min())))
        top = int(max(time_ms.max(), carried[known].max(initial=time_ms.max())))
        span = top - lo + 2
        if span * len(heads) < 2**62:
            # Per device, the running newest time including the carried one: one running
            # maximum over keys (device segment, time) with the carried time folded into each
            # device's first key.
            seg = np.cumsum(first, dtype=np.int64)
            seg -= 1
            base = seg * span
            key = time_ms - (lo - 1)
            key[heads] = np.maximum(key[heads], np.where(known, carried - (lo - 1), 0))
            key += base
            newest = np.maximum.accumulate(key)
            newest -= base
            newest += lo - 1
        else:  # pathological time span: one device at a time
            newest = np.empty_like(time_ms)
            ends = [*heads[1:], len(time_ms)]
            for a, b, c in zip(heads, ends, carried.tolist(), strict=True):
                newest[a:b] = np.maximum.accumulate(np.maximum(time_ms[a:b], c))
        prev_max = np.empty_like(time_ms)
        prev_max[1:] = newest[:-1]
        prev_max[heads] = carried
        older = time_ms < prev_max
        same = time_ms == prev_max
        flags[older] |= np.uint16(Flag.OUT_OF_ORDER)
        flags[same] |= np.uint16(Flag.DUPLICATE)
        self.counts.out_of_order += int(older.sum())
        self.counts.duplicate += int(same.sum())
        last = last_of_device(device)
        self.last_ms[device[last]] = newest[last]

    def _gate(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
    ) -> tuple[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]], npt.NDArray[np.float64]]:
        """Glitch gate over valid fixes grouped by device in time order.

        Returns (rows flagged as jumps, rows opening a jump incident) and the implied speed of
        each opening row. Vectorized against the previous fix; only rows after a jump are walked
        one by one, since their reference is no longer the previous row.
        """
        n = len(device)
        empty = np.zeros(0, np.intp)
        if n == 0:
            return (empty, empty), np.zeros(0, np.float64)
        first = first_of_device(device)
        prev_ms = np.empty(n, np.int64)
        prev_lon = np.empty(n, np.float64)
        prev_lat = np.empty(n, np.float64)
        prev_ms[1:], prev_lon[1:], prev_lat[1:] = time_ms[:-1], lon[:-1], lat[:-1]
        d0 = device[first]
        prev_ms[first], prev_lon[first], prev_lat[first] = (
            self.ref_ms[d0],
            self.ref_lon[d0],
            self.ref_lat[d0],
        )
        has_ref = prev_ms >= 0
        dt_s = np.maximum((time_ms - prev_ms) / 1000.0, 1e-3)
        limit_mps = self.settings.max_speed_kmh / 3.6
        limit_m = limit_mps * dt_s
        # Along the meridian, then along a parallel, is never shorter than the great circle:
        # a row whose such path (with a margin for rounding) is within the limit cannot be
        # suspect, so the exact distance is computed only for the others (a few percent).
        bound_m = np.abs(lat - prev_lat)
        bound_m += np.abs(lon - prev_lon)
        bound_m *= M_PER_DEG_LAT * (1.0 + 1e-6)
        bound_m += 1.0
        check = np.flatnonzero(has_ref & (bound_m > limit_m))
        suspect = np.zeros(n, np.bool_)
        dist_m = haversine_m(prev_lon[check], prev_lat[check], lon[check], lat[check])
        suspect[check] = dist_m > limit_m[check]

        last = last_of_device(device)
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], n)
        walk = np.flatnonzero(np.logical_or.reduceat(suspect, starts) | self.in_jump[d0])
        jumped: list[int] = []
        opened: list[int] = []
        speeds: list[float] = []
        for k in walk:
            self._walk_device(
                int(starts[k]),
                int(ends[k]),
                int(d0[k]),
                suspect,
                time_ms,
                lon,
                lat,
                jumped,
                opened,
                speeds,
            )
        # Devices not walked: their newest fix is the reference.
        plain = np.ones(len(starts), np.bool_)
        plain[walk] = False
        rows = np.flatnonzero(last)[plain]
        dev = device[rows]
        self.ref_ms[dev], self.ref_lon[dev], self.ref_lat[dev] = time_ms[rows], lon[rows], lat[rows]
        return (
            (np.asarray(jumped, np.intp), np.asarray(opened, np.intp)),
            np.asarray(speeds, np.float64),
        )

    def _walk_device(
        self,
        start: int,
        end: int,
        dev: int,
        suspect: npt.NDArray[np.bool_],
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        jumped: list[int],
        opened: list[int],
        speeds: list[float],
    ) -> None:
        """Sequential gate for one device, skipping stretches where the previous row is the
        reference and no row is suspect."""
        limit_kmh = self.settings.max_speed_kmh
        ref_ms, ref_lon, ref_lat = (
            int(self.ref_ms[dev]),
            float(self.ref_lon[dev]),
            float(self.ref_lat[dev]),
        )
        in_jump = bool(self.in_jump[dev])
        run_count = int(self.run_count[dev])
        run_ms, run_lon, run_lat = (
            int(self.run_ms[dev]),
            float(self.run_lon[dev]),
            float(self.run_lat[dev]),
        )
        suspects = np.flatnonzero(suspect[start:end]) + start
        pos = start
        while pos < end:
            if not in_jump and not suspect[pos]:
                k = int(np.searchsorted(suspects, pos))
                nxt = int(suspects[k]) if k < len(suspects) else end
                ref_ms, ref_lon, ref_lat = (
                    int(time_ms[nxt - 1]),
                    float(lon[nxt - 1]),
                    float(lat[nxt - 1]),
                )
                pos = nxt
                continue
            t, x, y = int(time_ms[pos]), float(lon[pos]), float(lat[pos])
            speed = _speed_kmh(ref_ms, ref_lon, ref_lat, t, x, y)
            if ref_ms < 0 or speed <= limit_kmh:
                ref_ms, ref_lon, ref_lat = t, x, y
                in_jump, run_count = False, 0
            else:
                jumped.append(pos)
                if not in_jump:
                    opened.append(pos)
                    speeds.append(speed)
                in_jump = True
                consistent = run_count > 0 and (
                    _speed_kmh(run_ms, run_lon, run_lat, t, x, y) <= limit_kmh
                )
                run_count = run_count + 1 if consistent else 1
                run_ms, run_lon, run_lat = t, x, y
                if run_count >= self.settings.reanchor_fixes:
                    ref_ms, ref_lon, ref_lat = t, x, y
                    in_jump, run_count = False, 0
            pos += 1
        self.ref_ms[dev], self.ref_lon[dev], self.ref_lat[dev] = ref_ms, ref_lon, ref_lat
        self.in_jump[dev] = in_jump
        self.run_count[dev] = run_count
        self.run_ms[dev], self.run_lon[dev], self.run_lat[dev] = run_ms, run_lon, run_lat


def _speed_kmh(t0_ms: int, lon0: float, lat0: float, t1_ms: int, lon1: float, lat1: float) -> float:
    dt_s = max((t1_ms - t0_ms) / 1000.0, 1e-3)
    return haversine_scalar_m(lon0, lat0, lon1, lat1) / dt_s * 3.6
