"""`not_home` and `night_trips`: what a car does at night (local time, GMT+8).

`not_home`: each night (22:00-07:00 local) a device has valid fixes in is *slept* at the place
of its last fix of that night. The device's home is learned from the nights it slept: the ~500 m
cell it slept in most often (the mean of those nights' places), once it has slept `learn`
nights. A night slept more than the radius from home counts as away; `nights` away in a row (a
night without fixes neither counts nor breaks the run) opens an episode dated at the end of the
last of them (07:00), and the next night at home ends it. The home is learned from the first
nights and refined by the nights at home; nights away never teach it, so a car that does not
come back stays in one incident (it is the officer's call whether it has moved).
A night is closed by the device's first fix at or after its end, or by the clock.

`night_trips`: a device driving during the night window (00:00-05:00 local): the distance
between consecutive fixes of the same window with reported speed above 5 km/h adds up, and the
fix at which it passes the limit (5 km) opens an episode ending with the window, so one vehicle
gives one alert per night.

Both depend only on each device's own fixes in time order: the result does not depend on how
the input is cut into batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from positions.geo import haversine_m, haversine_scalar_m
from trajectory.segments import Ints, first_of_device, last_of_device
from trajectory.state import grown

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LOCAL_OFFSET_MS = 8 * HOUR_MS
NIGHT_FROM_H = 22
NIGHT_HOURS = 9  # 22:00 to 07:00
HOME_CELL_DEG = 0.005  # ~500 m


def night_of(time_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The night index of each time (-1 outside 22:00-07:00 local)."""
    shifted = time_ms + LOCAL_OFFSET_MS + (24 - NIGHT_FROM_H) * HOUR_MS
    index, offset = np.divmod(shifted, DAY_MS)
    return np.where(offset < NIGHT_HOURS * HOUR_MS, index, -1)


def night_end_ms(index: int) -> int:
    """When night `index` ends (07:00 local), in epoch ms."""
    return index * DAY_MS + NIGHT_HOURS * HOUR_MS - LOCAL_OFFSET_MS - (24 - NIGHT_FROM_H) * HOUR_MS


@dataclass(frozen=True, slots=True)
class NotHomeSettings:
    nights: int = 3
    radius_m: float = 1000.0
    learn: int = 3


@dataclass(slots=True)
class NightEdges:
    """Episode starts (device, time, details) and ends (device, time)."""

    start_device: list[int] = field(default_factory=list)
    start_ms: list[int] = field(default_factory=list)
    details: list[dict[str, object]] = field(default_factory=list)
    end_device: list[int] = field(default_factory=list)
    end_ms: list[int] = field(default_factory=list)


@dataclass
class NotHomeRule:
    settings: NotHomeSettings = field(default_factory=NotHomeSettings)
    night: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    away: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    away_since: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    slept: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    open: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    closed: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # per device: its vehicle's thresholds (`settings` for a device nobody set)
    nights: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    radius_m: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    learn: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # per device: cell -> [nights, sum lon, sum lat]
    cells: dict[int, dict[tuple[int, int], list[float]]] = field(default_factory=dict)

    def ensure(self, n_devices: int) -> None:
        self.night = grown(self.night, n_devices, -1)
        self.lon = grown(self.lon, n_devices, 0.0)
        self.lat = grown(self.lat, n_devices, 0.0)
        self.away = grown(self.away, n_devices, 0)
        self.away_since = grown(self.away_since, n_devices, -1)
        self.slept = grown(self.slept, n_devices, 0)
        self.open = grown(self.open, n_devices, False)
        self.closed = grown(self.closed, n_devices, -1)
        self.nights = grown(self.nights, n_devices, self.settings.nights)
        self.radius_m = grown(self.radius_m, n_devices, self.settings.radius_m)
        self.learn = grown(self.learn, n_devices, self.settings.learn)

    def set_limits(self, devices: slice, limits: list[NotHomeSettings]) -> None:
        """Each device of `devices` gets its vehicle's thresholds."""
        self.nights[devices] = [max(1, s.nights) for s in limits]
        self.radius_m[devices] = [s.radius_m for s in limits]
        self.learn[devices] = [max(1, s.learn) for s in limits]

    def home(self, device: int) -> tuple[float, float] | None:
        """The learned home (lon, lat), None before `learn` nights."""
        cells = self.cells.get(device)
        if not cells or self.slept[device] < self.learn[device]:
            return None
        best = max(cells.items(), key=lambda kv: (kv[1][0], -kv[0][0], -kv[0][1]))[1]
        return best[1] / best[0], best[2] / best[0]

    def fixes(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
    ) -> NightEdges:
        """Accepted valid fixes grouped by device in time order."""
        out = NightEdges()
        if len(device) == 0:
            return out
        night = night_of(time_ms)
        at_night = night >= 0
        # The last fix of each (device, night): where the device slept that night so far.
        key_change = np.ones(len(device), np.bool_)
        key_change[:-1] = (device[1:] != device[:-1]) | (night[1:] != night[:-1])
        rows = np.flatnonzero(key_change & at_night)
        last = np.flatnonzero(last_of_device(device))
        events = sorted(
            [(d, t, 0, n, x, y) for d, t, n, x, y in zip(
                device[rows].tolist(), time_ms[rows].tolist(), night[rows].tolist(),
                lon[rows].tolist(), lat[rows].tolist(), strict=True)]
            + [(d, t, 1, -1, 0.0, 0.0)
               for d, t in zip(device[last].tolist(), time_ms[last].tolist(), strict=True)]
        )  # fmt: skip
        for d, t, kind, n, x, y in events:
            current = int(self.night[d])
            if current >= 0 and (n > current or t >= night_end_ms(current)):
                self._close(d, out)
            if kind == 0 and n > int(self.closed[d]):
                self.night[d], self.lon[d], self.lat[d] = n, x, y
        return out

    def advance(self, now_ms: int) -> NightEdges:
        """Nights the clock has carried past their end."""
        out = NightEdges()
        waiting = np.flatnonzero(self.night >= 0).tolist()
        for d in waiting:
            if now_ms >= night_end_ms(int(self.night[d])):
                self._close(d, out)
        return out

    def known_through_ms(self, n_devices: int) -> npt.NDArray[np.float64]:
        """A device with a night still open that may start or end an episode at its end."""
        known = np.full(n_devices, np.inf)
        night = self.night[:n_devices]
        deciding = (night >= 0) & (
            (self.away[:n_devices] >= self.nights[:n_devices] - 1) | self.open[:n_devices]
        )
        for d in np.flatnonzero(deciding).tolist():
            known[d] = night_end_ms(int(night[d])) - 1
        return known

    def _close(self, d: int, out: NightEdges) -> None:
        n, x, y = int(self.night[d]), float(self.lon[d]), float(self.lat[d])
        self.night[d] = -1
        self.closed[d] = n
        end = night_end_ms(n)
        home = self.home(d)
        learn = home is None
        if home is not None:
            if haversine_scalar_m(home[0], home[1], x, y) <= self.radius_m[d]:
                learn = True
                self.away[d] = 0
                self.away_since[d] = -1
                if self.open[d]:
                    self.open[d] = False
                    out.end_device.append(d)
                    out.end_ms.append(end)
            else:
                if self.away[d] == 0:
                    self.away_since[d] = end - NIGHT_HOURS * HOUR_MS
                self.away[d] += 1
                if self.away[d] >= self.nights[d] and not self.open[d]:
                    self.open[d] = True
                    out.start_device.append(d)
                    out.start_ms.append(end)
                    out.details.append(
                        {
                            "nights": int(self.away[d]),
                            "since_ms": int(self.away_since[d]),
                            "home": {"lon": round(home[0], 6), "lat": round(home[1], 6)},
                            "lon": round(x, 6),
                            "lat": round(y, 6),
                        }
                    )
        if not learn:
            return
        cell = (math.floor(x / HOME_CELL_DEG), math.floor(y / HOME_CELL_DEG))
        entry = self.cells.setdefault(d, {}).setdefault(cell, [0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += x
        entry[2] += y
        self.slept[d] += 1


@dataclass(frozen=True, slots=True)
class NightTripSettings:
    from_h: float = 0.0
    to_h: float = 5.0
    distance_m: float = 5000.0
    moving_kmh: float = 5.0


@dataclass
class NightTripRule:
    settings: NightTripSettings = field(default_factory=NightTripSettings)
    window: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    metres: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    prev_lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    prev_lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    fired: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    # per device: its vehicle's window (start after local midnight, length) and distance
    from_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    length_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    distance_m: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))

    def ensure(self, n_devices: int) -> None:
        s = self.settings
        self.from_ms = grown(self.from_ms, n_devices, int(s.from_h * HOUR_MS))
        self.length_ms = grown(self.length_ms, n_devices, _length_ms(s))
        self.distance_m = grown(self.distance_m, n_devices, s.distance_m)
        self.window = grown(self.window, n_devices, -1)
        self.metres = grown(self.metres, n_devices, 0.0)
        self.prev_lon = grown(self.prev_lon, n_devices, 0.0)
        self.prev_lat = grown(self.prev_lat, n_devices, 0.0)
        self.fired = grown(self.fired, n_devices, False)

    def set_limits(self, devices: slice, limits: list[NightTripSettings]) -> None:
        """Each device of `devices` gets its vehicle's window and distance. A device whose
        window changes starts counting afresh at its next fix."""
        start = np.array([int(s.from_h * HOUR_MS) for s in limits], np.int64)
        length = np.array([_length_ms(s) for s in limits], np.int64)
        changed = (self.from_ms[devices] != start) | (self.length_ms[devices] != length)
        self.window[devices] = np.where(changed, -1, self.window[devices])
        self.from_ms[devices], self.length_ms[devices] = start, length
        self.distance_m[devices] = [s.distance_m for s in limits]

    def _windows(self, device: Ints, time_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Each row's window index in its device's own night window (-1: outside)."""
        index, offset = np.divmod(time_ms + LOCAL_OFFSET_MS - self.from_ms[device], DAY_MS)
        return np.where(offset < self.length_ms[device], index, -1)

    def window_end_ms(self, index: int, device: int) -> int:
        return (
            index * DAY_MS + int(self.from_ms[device]) + int(self.length_ms[device])
            - LOCAL_OFFSET_MS
        )  # fmt: skip

    def fixes(
        self,
        device: Ints,
        time_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
        speed_kmh: npt.NDArray[np.float32],
    ) -> NightEdges:
        """Accepted valid fixes grouped by device in time order."""
        out = NightEdges()
        n = len(device)
        if n == 0:
            return out
        window = self._windows(device, time_ms)
        inside = np.flatnonzero(window >= 0)
        if len(inside) == 0:
            return out
        dev, win = device[inside], window[inside]
        x, y = lon[inside], lat[inside]
        first = first_of_device(dev)
        new_group = first.copy()
        new_group[1:] |= win[1:] != win[:-1]
        # Carried state applies to a device's first row when it is in the same window.
        carried = first & (self.window[dev] == win)
        px, py = np.empty(len(dev)), np.empty(len(dev))
        px[1:], py[1:] = x[:-1], y[:-1]
        px[first], py[first] = self.prev_lon[dev[first]], self.prev_lat[dev[first]]
        has_prev = ~new_group | carried
        moving = speed_kmh[inside] > self.settings.moving_kmh
        step = np.where(has_prev & moving, haversine_m(px, py, x, y), 0.0)
        total = np.cumsum(step)
        starts = np.flatnonzero(new_group)
        base = np.repeat(total[starts] - step[starts], np.diff(np.append(starts, len(dev))))
        metres = total - base + np.where(np.repeat(carried[starts], np.diff(
            np.append(starts, len(dev)))), self.metres[dev], 0.0)  # fmt: skip
        already = np.repeat(carried[starts] & self.fired[dev[starts]], np.diff(
            np.append(starts, len(dev))))  # fmt: skip
        over = (metres >= self.distance_m[dev]) & ~already
        group_of = np.cumsum(new_group) - 1
        hit_groups, first_hit = np.unique(group_of[over], return_index=True)
        hits = np.flatnonzero(over)[first_hit]
        for r in hits.tolist():
            d, w = int(dev[r]), int(win[r])
            out.start_device.append(d)
            out.start_ms.append(int(time_ms[inside[r]]))
            out.details.append({"distance_m": round(float(metres[r]))})
            out.end_device.append(d)
            out.end_ms.append(self.window_end_ms(w, d))
        fired_group = np.zeros(len(starts), np.bool_)
        fired_group[hit_groups] = True
        last = np.flatnonzero(last_of_device(dev))
        g = group_of[last]
        d_last = dev[last]
        self.fired[d_last] = fired_group[g] | already[last]
        self.window[d_last] = win[last]
        self.metres[d_last] = metres[last]
        self.prev_lon[d_last], self.prev_lat[d_last] = x[last], y[last]
        return out


def _length_ms(s: NightTripSettings) -> int:
    return int(((s.to_h - s.from_h) % 24) * HOUR_MS)
