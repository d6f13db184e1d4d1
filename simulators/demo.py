"""The live demo fleet: about twenty financed cars in Hangzhou and a script of risk incidents.

Each car carries a wired tracker, several also a hidden wireless one; they report every few
seconds on the wall clock through the sans-IO `Device` (JT/T 808 2013). Routine cars shuttle
between places far from every fence. A few cars play an incident that fires within the first
minutes under `demo_rules()` (short thresholds, documented RULES.toml keys only):

| car role | what happens (seconds after the start) | alert |
|---|---|---|
| power | parked; its wired unit's main power is cut at +20 | power_cut |
| jump | driving; one fix of its wired unit lands 40 km away at +25 | gps_jump |
| zone | drives into the West Lake scenic area and out again | geofence_enter, geofence_exit |
| leave | drives west out of the allowed urban districts from +8 | leave_allowed_area |
| fast | 140 km/h on an expressway from +8 | overspeed |
| pawn | parks at a pawn shop from about +25 | hotspot_dwell |
| silent | its only tracker goes silent at +30 | offline |
| split | drives off at +8, leaving its hidden unit behind | device_separation |

Everything is a function of the seed and the start time: the same seed gives the same cars,
trackers, places and incidents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from alerts.model import AlertType
from ingest.jt808.ids import Alarm
from ingest.jt808.messages import LocationReport, Register
from pipeline.thresholds import RuleBook, parse_rules
from simulators.demo_city import (
    FRAME,
    METRO_ID,
    METRO_WEST_X_M,
    PAWN_ID,
    ZONE_ID,
    ZONE_XY,
    clear_route,
    demo_fence_list,
    feature_collection,
    hotspot,
)
from simulators.device import Device, Habits, Kind, Motion, Parked, PlanMotion, Shuttle
from simulators.plan import Segment, Stay, make_trip

SECOND_MS = 1000
FOREVER_MS = 365 * 24 * 3600 * SECOND_MS

# Demo thresholds: minutes instead of hours, so the whole script plays in about two minutes.
DEMO_RULES_TOML = """\
[hotspot_dwell]
after_s = 60

[offline]
after_s = 60

[device_separation]
distance_m = 1000
duration_s = 60

[overspeed]
duration_s = 30
"""

WIRED_HABITS = Habits(
    moving_interval_s=5, parked_interval_s=10, heartbeat_interval_s=30, acc_probe_s=1
)
WIRELESS_HABITS = Habits.wireless(parked_interval_s=10, heartbeat_interval_s=60)

# When scripted things happen, in seconds after the start.
DRIVE_AT_S = 8
POWER_CUT_AT_S = 20
JUMP_AT_S = 25
SILENT_AT_S = 30
JUMP_LAT_E6 = 360_000  # 0.36 degrees north: about 40 km in one report

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q in a VIN
PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def demo_rules() -> RuleBook:
    """The demo's thresholds, read from RULES.toml text like any rules file."""
    return parse_rules(DEMO_RULES_TOML, "demo rules")


@dataclass(frozen=True, slots=True)
class Tracker:
    """One simulated unit and what the script does to it (times in epoch ms)."""

    terminal: str
    vehicle_id: str
    kind: Kind
    motion: Motion
    habits: Habits
    registration: Register
    power_cut_ms: int | None = None  # main power off (alarm bit 8) from then on
    jump_ms: int | None = None  # the first report at or after it is displaced
    silent_ms: int | None = None  # the unit disconnects for good then


@dataclass(frozen=True, slots=True)
class Car:
    vehicle_id: str
    plate: str
    role: str  # "routine" or the incident it plays
    trackers: tuple[Tracker, ...]


@dataclass(frozen=True, slots=True)
class Incident:
    """An injected incident: the alert it must give and when (data time, epoch ms)."""

    type: AlertType
    vehicle_id: str
    device_id: str | None  # the unit for device-level rules; None: any unit of the car
    fence_id: str | None
    onset_ms: int  # when the condition starts
    due_ms: int  # by when the alert has fired under demo_rules(), a report or two of slack
    story: str


@dataclass(frozen=True, slots=True)
class DemoScript:
    seed: int
    t0_ms: int
    cars: tuple[Car, ...]
    incidents: tuple[Incident, ...]

    @property
    def trackers(self) -> list[Tracker]:
        return [t for car in self.cars for t in car.trackers]

    def bindings(self) -> dict[str, str]:
        """Terminal → vehicle id: which trackers make one car."""
        return {t.terminal: t.vehicle_id for t in self.trackers}


def demo_fences(script: DemoScript) -> dict[str, Any]:
    """The demo's fences as a GeoJSON FeatureCollection (contracts section 3)."""
    return feature_collection(demo_fence_list([car.vehicle_id for car in script.cars]))


class ScriptedDevice(Device):
    """A `Device` whose reports carry the script's alarm bits and its one GPS jump."""

    def __init__(self, tracker: Tracker, start_ms: int) -> None:
        super().__init__(
            tracker.terminal,
            tracker.motion,
            tracker.habits,
            registration=tracker.registration,
            start_ms=start_ms,
        )
        self.tracker = tracker
        self._jumped = False

    def report_at(self, now_ms: int) -> LocationReport:
        report = super().report_at(now_ms)
        script = self.tracker
        if script.power_cut_ms is not None and now_ms >= script.power_cut_ms:
            report = report._replace(alarm=report.alarm | int(Alarm.POWER_CUT))
        if script.jump_ms is not None and now_ms >= script.jump_ms and not self._jumped:
            self._jumped = True
            report = report._replace(lat_e6=report.lat_e6 + JUMP_LAT_E6)
        return report


# ---------------------------------------------------------------------- building the script


class _Builder:
    """Draws cars in order from one random generator, so the seed fixes everything."""

    def __init__(self, seed: int, t0_ms: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.t0_ms = t0_ms
        self.plates: set[str] = set()
        self.cars: list[Car] = []
        self.incidents: list[Incident] = []

    def at(self, seconds: float) -> int:
        return self.t0_ms + round(seconds * SECOND_MS)

    def _pick(self, alphabet: str, n: int) -> str:
        return "".join(alphabet[int(i)] for i in self.rng.integers(0, len(alphabet), n))

    def identity(self) -> tuple[str, str]:
        """A vehicle id (`VIN-` and a 17-character VIN) and a unique Zhejiang-A plate."""
        vin = "LHZ" + self._pick(VIN_CHARS, 14)
        plate = "浙A" + self._pick(PLATE_CHARS, 5)
        while plate in self.plates:
            plate = "浙A" + self._pick(PLATE_CHARS, 5)
        self.plates.add(plate)
        return f"VIN-{vin}", plate

    def routine_place(
        self, far_m: float = 0.0, course_deg: float | None = None
    ) -> tuple[float, float, float]:
        """A start (metres) and a course whose drive of `far_m` stays clear of every fence."""
        while True:
            x = float(self.rng.uniform(-16_000, 16_000))
            y = float(self.rng.uniform(-14_000, 14_000))
            course = float(self.rng.uniform(0, 360)) if course_deg is None else course_deg
            rad = math.radians(course)
            end = (x + far_m * math.sin(rad), y + far_m * math.cos(rad))
            if clear_route([(x, y), end]):
                return x, y, course

    def shuttle(self) -> Shuttle:
        speed = float(self.rng.uniform(25, 60))
        drive_s = float(self.rng.uniform(60, 240))
        park_s = float(self.rng.uniform(30, 120))
        x, y, course = self.routine_place(speed / 3.6 * drive_s)
        lon, lat = FRAME.to_lonlat(x, y)
        phase_ms = int(self.rng.integers(0, int(2 * (drive_s + park_s) * SECOND_MS)))
        return Shuttle(
            float(lon), float(lat), round(course, 1), round(speed, 1), round(drive_s),
            round(park_s), self.t0_ms - phase_ms,
        )  # fmt: skip

    def add_car(
        self,
        role: str,
        motion: Motion,
        *,
        hidden: bool | Motion,
        **script: int,
    ) -> Car:
        """A car with its wired unit (`script` applies to it) and, when `hidden`, a wireless
        unit moving with the car (or along its own motion when one is given)."""
        number = len(self.cars) + 1
        vehicle_id, plate = self.identity()
        wired = Tracker(
            f"0139571{number:05d}", vehicle_id, Kind.WIRED, motion,
            _with_seed(WIRED_HABITS, number), _registration(f"0139571{number:05d}", plate),
            **script,
        )  # fmt: skip
        trackers = [wired]
        if hidden is not False:
            terminal = f"0138571{number:05d}"
            unit_motion = motion if hidden is True else hidden
            trackers.append(
                Tracker(
                    terminal, vehicle_id, Kind.WIRELESS, unit_motion,
                    _with_seed(WIRELESS_HABITS, 10_000 + number),
                    _registration(terminal, plate, Kind.WIRELESS),
                )
            )  # fmt: skip
        car = Car(vehicle_id, plate, role, tuple(trackers))
        self.cars.append(car)
        return car

    def incident(
        self,
        kind: AlertType,
        car: Car,
        onset_s: float,
        due_s: float,
        story: str,
        *,
        device: bool = False,
        fence_id: str | None = None,
    ) -> None:
        self.incidents.append(
            Incident(
                kind, car.vehicle_id, car.trackers[0].terminal if device else None, fence_id,
                self.at(onset_s), self.at(due_s), story,
            )
        )  # fmt: skip

    def drive(
        self, points: Sequence[tuple[float, float]], pieces: list[tuple[float, float]], label: str
    ) -> PlanMotion:
        """Parked at the first point until DRIVE_AT_S, then along the points, then parked."""
        xs = np.array([p[0] for p in points], dtype=np.float64)
        ys = np.array([p[1] for p in points], dtype=np.float64)
        trip = make_trip(self.at(DRIVE_AT_S), xs, ys, pieces, 5, label)
        plan: list[Segment] = [
            Stay(
                self.t0_ms - 3600 * SECOND_MS,
                trip.t0_ms,
                points[0][0],
                points[0][1],
                True,
                "before",
            ),
            trip,
            Stay(trip.t1_ms, self.t0_ms + FOREVER_MS, points[-1][0], points[-1][1], False, "after"),
        ]
        return PlanMotion(tuple(plan), FRAME)


def _with_seed(habits: Habits, seed: int) -> Habits:
    return replace(habits, seed=seed)


def _registration(terminal: str, plate: str, kind: Kind = Kind.WIRED) -> Register:
    """0x0100 body of a Hangzhou unit (province 33 Zhejiang, city 0100 Hangzhou)."""
    return Register(
        province_id=33,
        city_id=100,
        maker_id="LWSIM",
        model=kind.value,
        terminal_id=terminal[-7:],
        plate_color=1,
        plate=plate,
    )


# Each scripted car: a function adding it and its incidents, in the order small fleets keep.


def _power(b: _Builder) -> None:
    x, y, _ = b.routine_place()
    lon, lat = FRAME.to_lonlat(x, y)
    car = b.add_car(
        "power", Parked(float(lon), float(lat)), hidden=True, power_cut_ms=b.at(POWER_CUT_AT_S)
    )
    b.incident(
        AlertType.POWER_CUT, car, POWER_CUT_AT_S, POWER_CUT_AT_S + 15,
        "the wired unit of a parked car loses main power", device=True,
    )  # fmt: skip


def _jump(b: _Builder) -> None:
    car = b.add_car("jump", b.shuttle(), hidden=False, jump_ms=b.at(JUMP_AT_S))
    b.incident(
        AlertType.GPS_JUMP, car, JUMP_AT_S, JUMP_AT_S + 15,
        "one fix lands 40 km away", device=True,
    )  # fmt: skip


def _zone(b: _Builder) -> None:
    east, north = ZONE_XY[1][0], ZONE_XY[2][1]
    points = [
        (east + 300.0, north - 300.0),
        (east - 500.0, north - 300.0),
        (east - 500.0, north + 900.0),
    ]
    speed = 45.0
    car = b.add_car("zone", b.drive(points, [(1.0, speed)], "scenic drive"), hidden=False)
    enter_s = DRIVE_AT_S + 300.0 / (speed / 3.6)
    exit_s = enter_s + 800.0 / (speed / 3.6)
    b.incident(
        AlertType.GEOFENCE_ENTER, car, enter_s, enter_s + 15,
        "drives into the West Lake scenic area", fence_id=ZONE_ID,
    )  # fmt: skip
    b.incident(
        AlertType.GEOFENCE_EXIT, car, exit_s, exit_s + 15,
        "drives out of the West Lake scenic area", fence_id=ZONE_ID,
    )  # fmt: skip


def _leave(b: _Builder) -> None:
    inside_m, speed = 350.0, 54.0
    y = float(b.rng.uniform(-4_000, 4_000))
    points = [(METRO_WEST_X_M + inside_m, y), (METRO_WEST_X_M - 5_000.0, y)]
    car = b.add_car("leave", b.drive(points, [(1.0, speed)], "westbound"), hidden=False)
    out_s = DRIVE_AT_S + inside_m / (speed / 3.6)
    b.incident(
        AlertType.LEAVE_ALLOWED_AREA, car, out_s, out_s + 15,
        "drives west out of the allowed urban districts", fence_id=METRO_ID,
    )  # fmt: skip


def _fast(b: _Builder) -> None:
    fast_m, cruise_m = 1_950.0, 3_000.0
    x, y, _ = b.routine_place(fast_m + cruise_m, course_deg=90.0)
    points = [(x, y), (x + fast_m + cruise_m, y)]
    car = b.add_car(
        "fast", b.drive(points, [(fast_m, 140.0), (cruise_m, 90.0)], "expressway"), hidden=False
    )
    b.incident(
        AlertType.OVERSPEED, car, DRIVE_AT_S, DRIVE_AT_S + 30 + 20,
        "140 km/h on an expressway",
    )  # fmt: skip


def _pawn(b: _Builder) -> None:
    spot = hotspot(PAWN_ID)
    start_m, speed = 350.0, 36.0
    points = [(spot.x_m + start_m, spot.y_m), (spot.x_m + 20.0, spot.y_m)]
    car = b.add_car("pawn", b.drive(points, [(1.0, speed)], "to the pawn shop"), hidden=True)
    entry_s = DRIVE_AT_S + (start_m - spot.radius_m) / (speed / 3.6)
    b.incident(
        AlertType.HOTSPOT_DWELL, car, entry_s, entry_s + 60 + 20,
        "parks at a pawn shop", fence_id=PAWN_ID,
    )  # fmt: skip


def _silent(b: _Builder) -> None:
    car = b.add_car("silent", b.shuttle(), hidden=False, silent_ms=b.at(SILENT_AT_S))
    b.incident(
        AlertType.OFFLINE, car, SILENT_AT_S, SILENT_AT_S + 60 + 15,
        "its only tracker goes silent", device=True,
    )  # fmt: skip


def _split(b: _Builder) -> None:
    away_m, speed = 4_000.0, 80.0
    x, y, course = b.routine_place(away_m)
    rad = math.radians(course)
    points = [(x, y), (x + away_m * math.sin(rad), y + away_m * math.cos(rad))]
    lon, lat = FRAME.to_lonlat(x, y)
    car = b.add_car(
        "split",
        b.drive(points, [(1.0, speed)], "driving off"),
        hidden=Parked(float(lon), float(lat)),
    )
    apart_s = DRIVE_AT_S + 1_200.0 / (speed / 3.6)  # 1 km plus what one report interval covers
    b.incident(
        AlertType.DEVICE_SEPARATION, car, apart_s, apart_s + 60 + 25,
        "drives off and leaves its hidden unit behind",
    )  # fmt: skip


SCRIPTED: tuple[Callable[[_Builder], None], ...] = (
    _power, _jump, _zone, _leave, _fast, _pawn, _silent, _split,
)  # fmt: skip
HIDDEN_SHARE = 0.5  # routine cars with a hidden wireless unit as well


def build_demo(seed: int = 1, cars: int = 20, t0_ms: int = 0) -> DemoScript:
    """`cars` cars starting at `t0_ms`: the scripted incidents first (as many as fit), then
    routine traffic."""
    if cars < 1:
        raise ValueError("cars: at least 1")
    b = _Builder(seed, t0_ms)
    for add in SCRIPTED[:cars]:
        add(b)
    while len(b.cars) < cars:
        b.add_car("routine", b.shuttle(), hidden=bool(b.rng.random() < HIDDEN_SHARE))
    return DemoScript(seed, t0_ms, tuple(b.cars), tuple(b.incidents))


def make_devices(script: DemoScript) -> list[ScriptedDevice]:
    return [ScriptedDevice(t, script.t0_ms) for t in script.trackers]


__all__ = [
    "DEMO_RULES_TOML",
    "Car",
    "DemoScript",
    "Incident",
    "ScriptedDevice",
    "Tracker",
    "build_demo",
    "demo_fences",
    "demo_rules",
    "make_devices",
]
