"""Where a car lives and goes, from one device's stored fixes: stops, the trips between them,
its learned places, and the hours it is most likely found at each.

Pure functions over time-ordered columns of valid fixes (one device), for answers about a time
range; the live engine's incremental rules (`trajectory.stops`, `trajectory.places`) stay as
they are, and the stops here come from the same `StopDetector` so both agree on what a stop is.

- A stop: as `trajectory.stops` (under 5 km/h within 200 m for at least 3 minutes), from the
  fix where the car arrived to the first fix away; one still going at the last fix is
  `ongoing` and ends there.
- A trip: from a stop's end to the next stop's start (or the range's first or last fix), its
  distance the sum of the straight lines between its fixes (haversine), its top speed the
  highest reported speed among them.
- A place: stops whose anchors lie within `radius_m` of the place's centre (the heaviest ~100 m
  cells first, greedily), with its visits, dwell, last visit, night (22:00-07:00) and weekday
  daytime (09:00-18:00) dwell. Home is the place with the most night dwell, work the one with
  the most weekday daytime dwell apart from home, as the live `long_stay` rule learns them;
  other places are `frequent` when visited at least twice.
- Presence by hour: for each local hour of the day (GMT+8), the share of that hour the car
  spent at the place over the days of the range; the best hour is the highest one, where a
  collector is most likely to find it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from positions.geo import haversine_m
from trajectory.geo import local_m
from trajectory.places import CELL_DEG, DAY_MS, HOUR_MS, LOCAL_OFFSET_MS, night_ms, work_ms
from trajectory.preprocess import NOT_A_FIX, Preprocessor
from trajectory.stops import StopDetector, StopSettings

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
HOURS = 24


@dataclass(frozen=True, slots=True)
class Stops:
    start_ms: I64
    end_ms: I64
    lon: F64  # the stop's anchor: where the car arrived
    lat: F64
    ongoing: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.start_ms)


@dataclass(frozen=True, slots=True)
class Trips:
    start_ms: I64
    end_ms: I64
    distance_m: F64
    max_speed_kmh: F64
    start_lon: F64
    start_lat: F64
    end_lon: F64
    end_lat: F64
    ongoing: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.start_ms)


@dataclass(frozen=True, slots=True)
class Places:
    """Learned places, home first, then work, then the rest by dwell."""

    kind: tuple[str, ...]  # home, work or frequent
    lon: F64
    lat: F64
    visits: I64
    dwell_ms: I64
    night_ms: I64
    work_ms: I64
    last_visit_ms: I64  # start of the latest visit
    last_left_ms: I64  # end of the latest visit (its last fix if still there)
    presence: F64  # (places, 24): share of each local hour spent there over the range

    def __len__(self) -> int:
        return len(self.kind)

    def best_hour(self) -> npt.NDArray[np.intp]:
        """Per place, the local hour (0-23) with the highest presence (the earliest on ties)."""
        return np.argmax(self.presence, axis=1) if len(self.kind) else np.zeros(0, np.intp)


def usable_fixes(
    time_ms: I64,
    recv_ms: I64,
    lon: F64,
    lat: F64,
    status: npt.NDArray[np.uint32],
    flags: npt.NDArray[np.uint16],
) -> npt.NDArray[np.bool_]:
    """Which of one device's stored rows (in time order) the rules would take as fixes: the
    engine's own pre-processing (invalid fixes, bad times, and the glitch gate, so a 500 km
    GPS jump adds no 1,000 km to a trip)."""
    n = len(time_ms)
    out = Preprocessor().apply(
        np.zeros(n, np.int32),
        np.asarray(time_ms, np.int64),
        np.asarray(recv_ms, np.int64),
        np.asarray(lon, np.float64),
        np.asarray(lat, np.float64),
        np.asarray(status, np.uint32),
        np.asarray(flags, np.uint16),
    )
    return np.asarray((out.flags & NOT_A_FIX) == 0)


def find_stops(
    time_ms: I64,
    lon: F64,
    lat: F64,
    speed_kmh: npt.NDArray[np.floating],
    settings: StopSettings | None = None,
) -> Stops:
    """Stops of one device's valid fixes in time order."""
    detector = StopDetector(settings or StopSettings())
    detector.ensure(1)
    device = np.zeros(len(time_ms), np.int32)
    events = detector.fixes(
        device,
        np.asarray(time_ms, np.int64),
        np.asarray(lon, np.float64),
        np.asarray(lat, np.float64),
        np.asarray(speed_kmh, np.float32),
    )
    min_ms = detector.settings.min_ms
    open_long = (events.open_last_ms - events.open_start_ms) >= min_ms
    return Stops(
        start_ms=np.concatenate([events.start_ms, events.open_start_ms[open_long]]),
        end_ms=np.concatenate([events.end_ms, events.open_last_ms[open_long]]),
        lon=np.concatenate([events.lon, events.open_lon[open_long]]),
        lat=np.concatenate([events.lat, events.open_lat[open_long]]),
        ongoing=np.concatenate(
            [np.zeros(len(events.start_ms), bool), np.ones(int(open_long.sum()), bool)]
        ),
    )


def find_trips(
    stops: Stops,
    time_ms: I64,
    lon: F64,
    lat: F64,
    speed_kmh: npt.NDArray[np.floating],
) -> Trips:
    """The moves between `stops` (from `find_stops` over the same fixes)."""
    n = len(time_ms)
    if n < 2:
        return _no_trips()
    # Trip k runs from the end of stop k-1 (the range's first fix for k = 0) to the start of
    # stop k (the range's last fix after the last stop); empty ones (a range that begins or
    # ends parked) are dropped.
    starts = np.concatenate([time_ms[:1], stops.end_ms])
    ends = np.concatenate([stops.start_ms, time_ms[-1:]])
    tail = np.zeros(len(starts), bool)
    tail[-1] = True
    keep = ends > starts
    starts, ends, tail = starts[keep], ends[keep], tail[keep]
    # Fix ranges [first, last]: from the last fix before the start (a stop ends at the first
    # fix away, so this is where the car was parked) to the first fix at or after the end.
    first = np.maximum(np.searchsorted(time_ms, starts, "left") - 1, 0)
    last = np.minimum(np.searchsorted(time_ms, ends, "left"), n - 1)
    step = np.zeros(n)
    step[1:] = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    travelled = np.cumsum(step)
    distance = travelled[last] - travelled[first]
    speed = np.asarray(speed_kmh, np.float64)
    # A month holds a few hundred trips: one slice each.
    top = np.array(
        [float(speed[a : b + 1].max()) for a, b in zip(first.tolist(), last.tolist(), strict=True)]
    )
    ongoing = tail  # still moving at the range's last fix
    return Trips(
        start_ms=starts.astype(np.int64),
        end_ms=ends.astype(np.int64),
        distance_m=distance,
        max_speed_kmh=top,
        start_lon=lon[first],
        start_lat=lat[first],
        end_lon=lon[last],
        end_lat=lat[last],
        ongoing=ongoing,
    )


def _no_trips() -> Trips:
    z64, zf = np.zeros(0, np.int64), np.zeros(0)
    return Trips(z64, z64, zf, zf, zf, zf, zf, zf, np.zeros(0, bool))


def _cumulative_hour_ms(t_ms: I64) -> npt.NDArray[np.int64]:
    """(n, 24): milliseconds since the epoch spent in each local hour of the day."""
    local = np.asarray(t_ms, np.int64)[:, None] + LOCAL_OFFSET_MS
    days, offset = np.divmod(local, DAY_MS)
    hour_start = np.arange(HOURS, dtype=np.int64)[None, :] * HOUR_MS
    return np.asarray(days * HOUR_MS + np.clip(offset - hour_start, 0, HOUR_MS))


def hour_dwell_ms(start_ms: I64, end_ms: I64) -> npt.NDArray[np.int64]:
    """(n, 24): milliseconds of each [start, end) falling in each local hour of the day."""
    return _cumulative_hour_ms(end_ms) - _cumulative_hour_ms(start_ms)


def learn_places(
    stops: Stops,
    range_start_ms: int,
    range_end_ms: int,
    *,
    radius_m: float = 250.0,
    max_places: int = 20,
) -> Places:
    """Places from the stops of a range; presence is measured over [range_start, range_end)."""
    n = len(stops)
    if n == 0:
        return _places_of(stops, np.zeros(0, np.int64), 0, range_start_ms, range_end_ms, [])
    dwell = (stops.end_ms - stops.start_ms).astype(np.float64)
    cell_x = np.floor(stops.lon / CELL_DEG).astype(np.int64)
    cell_y = np.floor(stops.lat / CELL_DEG).astype(np.int64)
    cells, cell_of = np.unique(np.stack([cell_x, cell_y], 1), axis=0, return_inverse=True)
    cell_of = cell_of.ravel()
    cell_dwell = np.bincount(cell_of, weights=dwell + 1.0, minlength=len(cells))
    cell_lon = np.bincount(cell_of, weights=stops.lon * (dwell + 1.0)) / cell_dwell
    cell_lat = np.bincount(cell_of, weights=stops.lat * (dwell + 1.0)) / cell_dwell
    # Greedy: the heaviest unassigned cell takes every unassigned cell within the radius.
    cluster = np.full(len(cells), -1, np.int64)
    order = np.argsort(-cell_dwell, kind="stable")
    clusters = 0
    for seed in order.tolist():
        if cluster[seed] >= 0:
            continue
        free = np.flatnonzero(cluster < 0)
        near = local_m(cell_lon[seed], cell_lat[seed], cell_lon[free], cell_lat[free]) <= radius_m
        cluster[free[near]] = clusters
        clusters += 1
    place_of = cluster[cell_of]
    return _places_of(stops, place_of, clusters, range_start_ms, range_end_ms, [max_places])


def _places_of(
    stops: Stops,
    place_of: I64,
    count: int,
    range_start_ms: int,
    range_end_ms: int,
    limit: list[int],
) -> Places:
    dwell = (stops.end_ms - stops.start_ms).astype(np.int64)
    weights = dwell.astype(np.float64) + 1.0
    visits = np.bincount(place_of, minlength=count).astype(np.int64)
    total = np.bincount(place_of, weights=dwell, minlength=count).astype(np.int64)
    night = np.bincount(
        place_of, weights=night_ms(stops.start_ms, stops.end_ms), minlength=count
    ).astype(np.int64)
    work = np.bincount(
        place_of, weights=work_ms(stops.start_ms, stops.end_ms), minlength=count
    ).astype(np.int64)
    mass = np.bincount(place_of, weights=weights, minlength=count).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        lon: F64 = np.bincount(place_of, weights=stops.lon * weights, minlength=count) / mass
        lat: F64 = np.bincount(place_of, weights=stops.lat * weights, minlength=count) / mass
    latest = np.full(count, -1, np.int64)
    np.maximum.at(latest, place_of, np.arange(len(place_of)))  # stops are in time order
    by_hour = np.zeros((count, HOURS), np.int64)
    np.add.at(by_hour, place_of, hour_dwell_ms(stops.start_ms, stops.end_ms))
    bounds = np.array([range_start_ms, range_end_ms], np.int64)
    observed = np.diff(_cumulative_hour_ms(bounds), axis=0)[0].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        presence = np.where(observed > 0, by_hour / np.maximum(observed, 1.0), 0.0)
    presence = np.clip(presence, 0.0, 1.0)
    # Kinds: home by night dwell, work by weekday daytime dwell apart from home.
    kind = np.full(count, "", dtype=object)
    home = int(np.argmax(night)) if count and night.max() > 0 else -1
    if home >= 0:
        kind[home] = "home"
    work_candidates = work.copy()
    if home >= 0:
        work_candidates[home] = 0
    work_place = int(np.argmax(work_candidates)) if count and work_candidates.max() > 0 else -1
    if work_place >= 0:
        kind[work_place] = "work"
    frequent = (kind == "") & (visits >= 2)
    kind[frequent] = "frequent"
    rank = np.where(kind == "home", 0, np.where(kind == "work", 1, 2))
    chosen = np.flatnonzero(kind != "")
    chosen = chosen[np.lexsort((-total[chosen], rank[chosen]))]
    if limit:
        chosen = chosen[: limit[0]]
    last = latest[chosen]
    return Places(
        kind=tuple(str(k) for k in kind[chosen]),
        lon=lon[chosen],
        lat=lat[chosen],
        visits=visits[chosen],
        dwell_ms=total[chosen],
        night_ms=night[chosen],
        work_ms=work[chosen],
        last_visit_ms=stops.start_ms[last] if len(last) else np.zeros(0, np.int64),
        last_left_ms=stops.end_ms[last] if len(last) else np.zeros(0, np.int64),
        presence=presence[chosen] if len(chosen) else np.zeros((0, HOURS)),
    )
