"""Learned places and `long_stay`.

Closed stops are binned into ~100 m cells per device, counting night dwell (22:00-07:00 local)
and weekday daytime dwell (09:00-18:00). Home is the cell with the most night dwell, work the
one with the most weekday daytime dwell apart from home. `long_stay`: a stop lasting 72 h more
than 1 km from both; it needs a learned home, so a car never seen at night stays silent.

A device's stops never overlap, so at any stop's deadline the book holds exactly the stops that
closed before it: the result does not depend on batching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from positions.geo import M_PER_DEG_LAT
from trajectory.geo import haversine_scalar_m
from trajectory.state import grown
from trajectory.stops import StopEvents

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LOCAL_OFFSET_MS = 8 * HOUR_MS  # trackers and their owners live in GMT+8
CELL_DEG = 0.001  # ~100 m of latitude
# 1970-01-01 was a Thursday: weekday flags for day index % 7 (0 = Thursday).
_WEEKDAY = np.array([1, 1, 0, 0, 1, 1, 1], np.int64)
_WEEKDAYS_BEFORE = np.concatenate([[0], np.cumsum(_WEEKDAY)])


def _cumulative_night_ms(t_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    local = t_ms + LOCAL_OFFSET_MS
    days, offset = np.divmod(local, DAY_MS)
    per_day = 9 * HOUR_MS
    return np.asarray(
        days * per_day + np.minimum(offset, 7 * HOUR_MS) + np.maximum(offset - 22 * HOUR_MS, 0)
    )


def _cumulative_work_ms(t_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    local = t_ms + LOCAL_OFFSET_MS
    days, offset = np.divmod(local, DAY_MS)
    weeks, in_week = np.divmod(days, 7)
    weekdays_before = weeks * 5 + _WEEKDAYS_BEFORE[in_week]
    today = _WEEKDAY[in_week] * np.clip(offset - 9 * HOUR_MS, 0, 9 * HOUR_MS)
    return np.asarray(weekdays_before * 9 * HOUR_MS + today)


def night_ms(
    start_ms: npt.NDArray[np.int64], end_ms: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Milliseconds of [start, end) falling between 22:00 and 07:00 local time."""
    return _cumulative_night_ms(end_ms) - _cumulative_night_ms(start_ms)


def work_ms(
    start_ms: npt.NDArray[np.int64], end_ms: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Milliseconds of [start, end) falling on a weekday between 09:00 and 18:00 local time."""
    return _cumulative_work_ms(end_ms) - _cumulative_work_ms(start_ms)


@dataclass(frozen=True, slots=True)
class LongStaySettings:
    after_ms: int = 72 * HOUR_MS
    radius_m: float = 1000.0


@dataclass(slots=True)
class LongStays:
    """Episode edges: starts (device, time, anchor) and ends (device, time)."""

    start_device: list[int]
    start_ms: list[int]
    where: list[tuple[float, float]]
    end_device: list[int]
    end_ms: list[int]
    # Stops of at least `away_ms` far from the usual places (when asked for, see LongStayRule):
    # (device, start, end or -1 while open, lon, lat), each device's in time order.
    away: list[tuple[int, int, int, float, float]] = field(default_factory=list)


Cell = tuple[int, int]
Key = tuple[int, Cell]  # (dwell ms, cell): the larger wins, the larger cell on a tie


@dataclass
class PlaceBook:
    """Per device: cell -> [night ms, weekday daytime ms] of the stops closed so far, with the
    leaders kept as cells grow (dwell only grows): the cell with most night dwell (home) and
    the two with most daytime dwell (work is the first of them that is not home)."""

    cells: dict[int, dict[Cell, list[int]]] = field(default_factory=dict)
    home: dict[int, Key] = field(default_factory=dict)
    day: dict[int, list[Key]] = field(default_factory=dict)

    def add(self, device: int, lon: float, lat: float, night: int, work: int) -> None:
        self.add_cell(device, (math.floor(lon / CELL_DEG), math.floor(lat / CELL_DEG)), night, work)

    def add_cell(self, device: int, cell: Cell, night: int, work: int) -> None:
        """`add` with the cell already computed (`cells_of` for a batch of stops)."""
        dwell = self.cells.setdefault(device, {}).setdefault(cell, [0, 0])
        dwell[0] += night
        dwell[1] += work
        if night > 0:
            key = (dwell[0], cell)
            best = self.home.get(device)
            if best is None or key > best:
                self.home[device] = key
        if work > 0:
            key = (dwell[1], cell)
            top = [k for k in self.day.get(device, ()) if k[1] != cell]
            top.append(key)
            top.sort(reverse=True)
            self.day[device] = top[:2]

    def usual(self, device: int) -> list[tuple[float, float]]:
        """Home, then work if any, as cell centres (lon, lat); empty before any night stop."""
        best = self.home.get(device)
        if best is None:
            return []
        home = best[1]
        work = [k[1] for k in self.day.get(device, ()) if k[1] != home][:1]
        return [((x + 0.5) * CELL_DEG, (y + 0.5) * CELL_DEG) for x, y in [home, *work]]


@dataclass
class LongStayRule:
    settings: LongStaySettings = field(default_factory=LongStaySettings)
    book: PlaceBook = field(default_factory=PlaceBook)
    fired_start_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    # Also report stops of at least this long far (`away_radius_m`) from the usual places, as
    # the book stood when each closed (`LongStays.away`; gathering's visits). None: not asked.
    away_ms: int | None = None
    away_radius_m: float = 1000.0
    # per device: its vehicle's thresholds (the scalars above for a device nobody set)
    after_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    radius_m: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, np.float64))
    away_of_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    away_radius_of_m: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0, np.float64)
    )

    def ensure(self, n_devices: int) -> None:
        self.fired_start_ms = grown(self.fired_start_ms, n_devices, -1)
        self.after_ms = grown(self.after_ms, n_devices, self.settings.after_ms)
        self.radius_m = grown(self.radius_m, n_devices, self.settings.radius_m)
        self.away_of_ms = grown(self.away_of_ms, n_devices, self.away_ms or 0)
        self.away_radius_of_m = grown(self.away_radius_of_m, n_devices, self.away_radius_m)

    def set_limits(self, devices: slice, limits: list[LongStaySettings]) -> None:
        """Each device of `devices` gets its vehicle's thresholds."""
        self.after_ms[devices] = [s.after_ms for s in limits]
        self.radius_m[devices] = [s.radius_m for s in limits]

    def set_away(self, devices: slice, away_ms: list[int], radius_m: list[float]) -> None:
        """Each device's `away_ms` and `away_radius_m` (its vehicle's, for gathering)."""
        self.away_of_ms[devices] = away_ms
        self.away_radius_of_m[devices] = radius_m

    def _away(self, device: int, lon: float, lat: float) -> bool:
        """Far from the usual places by `away_radius_m` (a flat-earth distance: at a km the
        difference from the great circle is well under a metre), False with no home yet."""
        book = self.book
        home = book.home.get(device)
        if home is None:
            return False
        r2 = (float(self.away_radius_of_m[device]) / M_PER_DEG_LAT) ** 2
        k = math.cos(math.radians(lat)) ** 2
        places = [home[1], *[c for _, c in book.day.get(device, ()) if c != home[1]][:1]]
        for cx, cy in places:
            x, y = (cx + 0.5) * CELL_DEG, (cy + 0.5) * CELL_DEG
            if (x - lon) ** 2 * k + (y - lat) ** 2 <= r2:
                return False
        return True

    def _far(self, device: int, lon: float, lat: float) -> bool:
        usual = self.book.usual(device)
        radius = float(self.radius_m[device])
        return bool(usual) and all(haversine_scalar_m(x, y, lon, lat) > radius for x, y in usual)

    def stops(self, ev: StopEvents) -> LongStays:
        """Closed and still-open stops of one batch, in each device's time order."""
        out = LongStays([], [], [], [], [])
        after = self.after_ms.tolist()
        nights = night_ms(ev.start_ms, ev.end_ms).tolist()
        works = work_ms(ev.start_ms, ev.end_ms).tolist()
        # The same cells as `PlaceBook.add` computes (the same division and floor), for the
        # whole batch at once; the per-stop loop keeps only what depends on the book so far.
        cell_x = np.floor(ev.lon / CELL_DEG).astype(np.int64).tolist()
        cell_y = np.floor(ev.lat / CELL_DEG).astype(np.int64).tolist()
        closed = sorted(
            zip(ev.device.tolist(), ev.end_ms.tolist(), ev.start_ms.tolist(),
                ev.lon.tolist(), ev.lat.tolist(), nights, works, cell_x, cell_y, strict=True)
        )  # fmt: skip
        fired = self.fired_start_ms.tolist()  # plain ints for the loops; written back below
        add_cell = self.book.add_cell
        asked = self.away_ms is not None
        away_ms = self.away_of_ms.tolist()
        for d, end, start, lon, lat, night, work, x, y in closed:
            if asked and end - start >= away_ms[d] and self._away(d, lon, lat):
                out.away.append((d, start, end, lon, lat))
            if fired[d] == start:
                out.end_device.append(d)
                out.end_ms.append(end)
            elif end > start + after[d] and self._far(d, lon, lat):
                out.start_device.append(d)
                out.start_ms.append(start + after[d])
                out.where.append((lon, lat))
                out.end_device.append(d)
                out.end_ms.append(end)
            fired[d] = -1
            add_cell(d, (x, y), night, work)
        for d, start, last, lon, lat in zip(
            ev.open_device.tolist(), ev.open_start_ms.tolist(), ev.open_last_ms.tolist(),
            ev.open_lon.tolist(), ev.open_lat.tolist(), strict=True,
        ):  # fmt: skip
            if asked and last - start >= away_ms[d] and self._away(d, lon, lat):
                out.away.append((d, start, -1, lon, lat))
            if fired[d] != start and last >= start + after[d] and self._far(d, lon, lat):
                fired[d] = start
                out.start_device.append(d)
                out.start_ms.append(start + after[d])
                out.where.append((lon, lat))
        if closed or out.start_device:
            self.fired_start_ms[:] = fired
        return out

    def advance(
        self,
        now_ms: int,
        start_ms: npt.NDArray[np.int64],
        lon: npt.NDArray[np.float64],
        lat: npt.NDArray[np.float64],
    ) -> LongStays:
        """Timer over the detector's open stops (`start_ms` -1 where none)."""
        out = LongStays([], [], [], [], [])
        after = self.after_ms[: len(start_ms)]
        due = (start_ms >= 0) & (now_ms >= start_ms + after)
        due &= self.fired_start_ms[: len(start_ms)] != start_ms
        for d in np.flatnonzero(due).tolist():
            if self._far(d, float(lon[d]), float(lat[d])):
                self.fired_start_ms[d] = start_ms[d]
                out.start_device.append(d)
                out.start_ms.append(int(start_ms[d]) + int(after[d]))
                out.where.append((float(lon[d]), float(lat[d])))
        return out

    def known_through_ms(
        self, n_devices: int, start_ms: npt.NDArray[np.int64], last_ms: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float64]:
        """Per device, the time up to which its edges are final, given the stop detector's open
        stops (`start_ms`, -1 where none) and latest fixes: an open stop whose deadline no fix
        has reached may still open an episode there; inf elsewhere."""
        known = np.full(n_devices, np.inf)
        start, last = start_ms[:n_devices], last_ms[:n_devices]
        deadline = start + self.after_ms[:n_devices]
        waiting = (start >= 0) & (self.fired_start_ms[:n_devices] != start) & (last < deadline)
        known[waiting] = deadline[waiting] - 1
        return known
