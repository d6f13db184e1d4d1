"""Stops, trips, places and presence by hour over one device's fixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from positions.geo import haversine_m
from trajectory.visits import find_stops, find_trips, hour_dwell_ms, learn_places, usable_fixes

LOCAL = timedelta(hours=8)
MONDAY = datetime(2024, 3, 4, tzinfo=UTC) - LOCAL  # 2024-03-04 00:00 GMT+8, a Monday
HOME = (120.1000, 30.3000)
WORK = (120.1500, 30.2500)  # ~7.2 km away


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


class Track:
    def __init__(self) -> None:
        self.t: list[int] = []
        self.lon: list[float] = []
        self.lat: list[float] = []
        self.speed: list[float] = []

    def park(self, at: tuple[float, float], start: datetime, end: datetime, every_min: int) -> None:
        t = start
        while t < end:
            self.add(t, at, 0.0)
            t += timedelta(minutes=every_min)

    def drive(self, a: tuple[float, float], b: tuple[float, float], start: datetime) -> datetime:
        """20 fixes a minute apart, ~22 km/h straight from a to b (7.2 km in 20 min)."""
        for i in range(1, 21):
            f = i / 20
            self.add(
                start + timedelta(minutes=i - 1),
                (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])),
                30.0 + i,
            )
        return start + timedelta(minutes=20)

    def add(self, t: datetime, at: tuple[float, float], speed: float) -> None:
        self.t.append(ms(t))
        self.lon.append(at[0])
        self.lat.append(at[1])
        self.speed.append(speed)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.array(self.t, np.int64),
            np.array(self.lon),
            np.array(self.lat),
            np.array(self.speed, np.float32),
        )


def commuter(days: int) -> Track:
    """Home 18:30-08:30 (local), work 09:00-18:00 on weekdays; home all weekend."""
    track = Track()
    t = MONDAY
    for day in range(days):
        base = MONDAY + timedelta(days=day)
        if (base + LOCAL).weekday() < 5:
            track.park(HOME, t, base + timedelta(hours=8, minutes=30), 10)
            t = track.drive(HOME, WORK, base + timedelta(hours=8, minutes=30))
            track.park(WORK, t, base + timedelta(hours=18), 5)
            t = track.drive(WORK, HOME, base + timedelta(hours=18))
        else:
            track.park(HOME, t, base + timedelta(days=1), 10)
            t = base + timedelta(days=1)
    track.park(HOME, t, MONDAY + timedelta(days=days), 10)
    return track


def test_a_commuter_has_home_work_and_the_trips_between() -> None:
    t, lon, lat, speed = commuter(14).arrays()
    stops = find_stops(t, lon, lat, speed)
    trips = find_trips(stops, t, lon, lat, speed)
    assert len(trips) == 20  # 10 weekdays, two trips each
    assert np.allclose(trips.distance_m, haversine_m(*HOME, *WORK), rtol=0.02)
    assert (trips.max_speed_kmh == 50.0).all()
    assert ((trips.end_ms - trips.start_ms) >= 19 * 60_000).all()
    # Stops and trips alternate, none overlapping.
    edges = np.sort(np.concatenate([stops.start_ms, stops.end_ms, trips.start_ms, trips.end_ms]))
    assert (np.diff(edges) >= 0).all()
    places = learn_places(stops, ms(MONDAY), ms(MONDAY + timedelta(days=14)))
    assert places.kind == ("home", "work")
    assert haversine_m(places.lon[0], places.lat[0], *HOME) < 50
    assert haversine_m(places.lon[1], places.lat[1], *WORK) < 50
    assert places.visits.tolist() == [11, 10]
    hour = places.best_hour()
    assert 0 <= hour[0] <= 6 or hour[0] >= 19  # at home at night
    assert 9 <= hour[1] <= 17
    assert places.presence[0, 3] == 1.0  # every night at 03:00
    assert np.isclose(places.presence[1, 12], 10 / 14)  # weekdays at noon
    assert places.last_left_ms[0] == t[-1]  # still at home at the end


def test_no_fixes_no_stops_no_trips_no_places() -> None:
    empty = np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.float32)
    stops = find_stops(*empty)
    assert len(stops) == 0
    assert len(find_trips(stops, *empty)) == 0
    assert len(learn_places(stops, 0, 86_400_000)) == 0


def test_a_car_always_moving_has_one_ongoing_trip() -> None:
    track = Track()
    track.drive(HOME, WORK, MONDAY)
    t, lon, lat, speed = track.arrays()
    stops = find_stops(t, lon, lat, speed)
    trips = find_trips(stops, t, lon, lat, speed)
    assert len(stops) == 0
    assert len(trips) == 1 and bool(trips.ongoing[0])
    assert trips.start_ms[0] == t[0] and trips.end_ms[0] == t[-1]


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(1_600_000_000_000, 1_800_000_000_000),
    length=st.integers(0, 10 * 86_400_000),
)
def test_hour_dwell_adds_up_to_the_duration(start: int, length: int) -> None:
    by_hour = hour_dwell_ms(np.array([start], np.int64), np.array([start + length], np.int64))
    assert by_hour.sum() == length
    assert (by_hour >= 0).all()
    assert (by_hour <= (length // 86_400_000 + 1) * 3_600_000).all()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(2, 300),
)
def test_trips_and_stops_are_ordered_and_within_the_path(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(10_000, 600_000, n)).astype(np.int64) + 1_700_000_000_000
    moving = rng.random(n) < 0.5
    step = np.where(moving, rng.uniform(0.0005, 0.01, n), rng.uniform(0, 0.0002, n))
    lon = 120.0 + np.cumsum(step * rng.choice([-1, 1], n))
    lat = 30.0 + np.cumsum(step * rng.choice([-1, 1], n))
    speed = np.where(moving, rng.uniform(10, 120, n), rng.uniform(0, 4, n)).astype(np.float32)
    stops = find_stops(t, lon, lat, speed)
    trips = find_trips(stops, t, lon, lat, speed)
    path = float(haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]).sum())
    assert trips.distance_m.sum() <= path + 1e-6
    assert (trips.end_ms > trips.start_ms).all()
    assert (np.diff(trips.start_ms) > 0).all()
    assert (stops.end_ms >= stops.start_ms).all()
    assert (trips.max_speed_kmh <= speed.max()).all()
    places = learn_places(stops, int(t[0]), int(t[-1]) + 1)
    assert ((places.presence >= 0) & (places.presence <= 1)).all()
    assert places.visits.sum() <= len(stops)
    assert places.kind.count("home") <= 1 and places.kind.count("work") <= 1


def test_a_gps_jump_adds_no_distance_to_a_trip() -> None:
    track = Track()
    track.drive(HOME, WORK, MONDAY)
    t, lon, lat, speed = track.arrays()
    lon[10], lat[10] = 116.4, 39.9  # one fix in Beijing, mid-drive
    usable = usable_fixes(
        t, t + 500, lon, lat, np.full(len(t), 3, np.uint32), np.zeros(len(t), np.uint16)
    )
    assert usable.tolist() == [i != 10 for i in range(len(t))]
    keep = np.flatnonzero(usable)
    stops = find_stops(t[keep], lon[keep], lat[keep], speed[keep])
    trips = find_trips(stops, t[keep], lon[keep], lat[keep], speed[keep])
    assert len(trips) == 1
    assert trips.distance_m[0] < haversine_m(*HOME, *WORK) * 1.01
