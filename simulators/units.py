"""Device-level episodes applied to a unit's columns: alarms, silences, bad fixes.

They run at night, while every car is parked at home, so they never overlap a day-time episode;
each keeps the alarm word of the rows around a transition equal, so the incident is one edge.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from simulators.geo import LocalFrame
from simulators.timefmt import HOUR_MS, MINUTE_MS

ALARM_ANTENNA_CUT = 1 << 5
ALARM_ANTENNA_SHORT = 1 << 6
ALARM_UNDERVOLTAGE = 1 << 7
ALARM_POWER_CUT = 1 << 8
STATUS_POSITIONED = 2

NIGHT_KINDS_INCIDENT = ("power_cut", "removal", "antenna_cut", "offline", "gps_jump")
NIGHT_KINDS_CONFOUNDER = ("short_gap", "invalid_fixes", "other_alarm_bits")


@dataclass(slots=True)
class Cols:
    """One unit's rows in fix-time order, lon/lat degrees."""

    time_ms: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float64]
    course: npt.NDArray[np.float64]
    alarm: npt.NDArray[np.uint32]
    status: npt.NDArray[np.uint32]

    def take(self, index: npt.ArrayLike) -> Cols:
        return Cols(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def with_row_at(self, t_ms: int) -> tuple[Cols, int]:
        """Adds a parked report at t_ms copying the place of the row before; returns its index."""
        k = int(np.searchsorted(self.time_ms, t_ms))
        if k < len(self.time_ms) and self.time_ms[k] == t_ms:
            return self, k
        src = max(k - 1, 0)
        parts = {}
        for f in fields(self):
            col = getattr(self, f.name)
            parts[f.name] = np.concatenate([col[:k], col[src : src + 1], col[k:]])
        parts["time_ms"][k] = t_ms
        parts["speed_kmh"][k] = 0.0
        return Cols(**parts), k

    def drop_between(self, t0_ms: int, t1_ms: int) -> Cols:
        keep = ~((self.time_ms > t0_ms) & (self.time_ms < t1_ms))
        return self.take(np.nonzero(keep)[0])


def apply_night_episode(
    cols: Cols, kind: str, t0_ms: int, rng: np.random.Generator, frame: LocalFrame
) -> tuple[Cols, int, dict[str, float]]:
    """Applies `kind` from t0_ms; returns the columns, the episode end and its parameters."""
    params: dict[str, float] = {}
    if kind in ("power_cut", "other_alarm_bits"):
        minutes = float(rng.uniform(20, 40))
        end = t0_ms + int(minutes) * MINUTE_MS
        cols, _ = cols.with_row_at(t0_ms)
        cols, _ = cols.with_row_at(end)
        bits = ALARM_POWER_CUT if kind == "power_cut" else ALARM_ANTENNA_SHORT | ALARM_UNDERVOLTAGE
        window = (cols.time_ms >= t0_ms) & (cols.time_ms < end)
        cols.alarm[window] |= np.uint32(bits)
        return cols, end, params
    if kind == "removal":
        silent_until = t0_ms + int(float(rng.uniform(3.0, 4.5)) * HOUR_MS / 1000) * 1000
        last = t0_ms + 5 * MINUTE_MS
        cols, _ = cols.with_row_at(t0_ms)
        cols, _ = cols.with_row_at(last)
        cols = cols.drop_between(last, silent_until)
        cols, _ = cols.with_row_at(silent_until)
        cols.alarm[(cols.time_ms >= t0_ms) & (cols.time_ms <= last)] |= np.uint32(ALARM_POWER_CUT)
        params["last_report_ms"] = last
        return cols, silent_until, params
    if kind == "antenna_cut":
        end = t0_ms + int(rng.uniform(30, 60)) * MINUTE_MS
        cols, _ = cols.with_row_at(t0_ms)
        cols, _ = cols.with_row_at(end)
        window = (cols.time_ms >= t0_ms) & (cols.time_ms < end)
        cols.alarm[window] |= np.uint32(ALARM_ANTENNA_CUT)
        cols.status[window] &= np.uint32(~STATUS_POSITIONED & 0xFFFFFFFF)
        return cols, end, params
    if kind in ("offline", "short_gap"):
        hours = rng.uniform(2.6, 4.5) if kind == "offline" else rng.uniform(0.6, 1.5)
        end = t0_ms + int(hours * HOUR_MS / 1000) * 1000
        before = cols.time_ms[cols.time_ms <= t0_ms]
        params["last_report_ms"] = float(before[-1]) if len(before) else float(t0_ms)
        cols = cols.drop_between(t0_ms, end)
        after = cols.time_ms[cols.time_ms >= end]
        return cols, int(after[0]) if len(after) else end, params
    if kind == "gps_jump":
        cols, k = cols.with_row_at(t0_ms)
        angle = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(80_000, 300_000)
        x, y = frame.to_xy(cols.lon[k], cols.lat[k])
        lon, lat = frame.to_lonlat(x + dist * np.cos(angle), y + dist * np.sin(angle))
        cols.lon[k], cols.lat[k] = float(lon), float(lat)
        params["distance_m"] = float(dist)
        return cols, t0_ms, params
    if kind == "invalid_fixes":
        for step in range(10):
            t = t0_ms + step * 3 * MINUTE_MS + 60_000
            cols, k = cols.with_row_at(t)
            variant = step % 3
            if variant == 0:  # no GNSS: positioned bit off, zero coordinates
                cols.status[k] &= np.uint32(~STATUS_POSITIONED & 0xFFFFFFFF)
                cols.lon[k], cols.lat[k] = 0.0, 0.0
            elif variant == 1:  # positioned bit on but zero coordinates: still invalid
                cols.lon[k], cols.lat[k] = 0.0, 0.0
            else:  # positioned bit off, garbage far away
                cols.status[k] &= np.uint32(~STATUS_POSITIONED & 0xFFFFFFFF)
                cols.lon[k] += float(rng.uniform(-3, 3))
                cols.lat[k] += float(rng.uniform(-3, 3))
        return cols, t0_ms + 31 * MINUTE_MS, params
    raise ValueError(f"unknown unit episode {kind}")
