"""Daily life of each vehicle as plan segments, with day-time episodes written into it.

A routine day is home -> work -> maybe a shop -> home on weekdays, errands at weekends; every
stay lasts at least half an hour, so a wireless unit always finds a quiet moment to report. An
episode day replaces the routine with a planned excursion (a hotspot dwell, a trip out of the
city, a zone visit, a fast drive, a unit left at home, or one of their harmless look-alikes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.city import City
from simulators.config import ScenarioConfig
from simulators.fences import Fence
from simulators.layout import Layout, VehicleSpec
from simulators.plan import Segment, Stay, Trip, make_trip
from simulators.timefmt import DAY_MS, HOUR_MS, MINUTE_MS

DAY_KINDS_INCIDENT = (
    "hotspot_dwell",
    "market_dwell",
    "leave_area",
    "zone_visit",
    "overspeed",
    "separation",
)
DAY_KINDS_CONFOUNDER = (
    "hotspot_short_stop",
    "hotspot_drive_by",
    "speed_burst",
    "separation_short",
    "zone_visit_unlisted",
)


@dataclass(slots=True)
class Episode:
    """One injected incident or confounder: who, what and when (for labels and exclusions)."""

    kind: str
    vehicle_id: str
    device_id: str
    t0_ms: int
    t1_ms: int
    fence_id: str | None = None
    params: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Tracking:
    """The wireless unit left at (x_m, y_m) and told to track over [t0_ms, t1_ms)."""

    t0_ms: int
    t1_ms: int
    x_m: float
    y_m: float


def _s(ms: float) -> int:
    """Whole seconds, as JT808 times are."""
    return round(ms / 1000.0) * 1000


class DayBuilder:
    """Appends stays and trips to a vehicle's plan, keeping the clock and place."""

    def __init__(
        self,
        city: City,
        cfg: ScenarioConfig,
        rng: np.random.Generator,
        plan: list[Segment],
        x: float,
        y: float,
        t_ms: int,
    ) -> None:
        self.city, self.cfg, self.rng, self.plan = city, cfg, rng, plan
        self.x, self.y, self.t_ms = x, y, t_ms

    def stay(self, until_ms: int, safe: bool, label: str) -> None:
        until = max(_s(until_ms), self.t_ms + 30 * MINUTE_MS if safe else self.t_ms + MINUTE_MS)
        self.plan.append(Stay(self.t_ms, until, self.x, self.y, safe, label))
        self.t_ms = until

    def stay_for(self, minutes: float, safe: bool, label: str) -> None:
        self.stay(self.t_ms + int(minutes * MINUTE_MS), safe, label)

    def drive(
        self,
        bx: float,
        by: float,
        label: str,
        *,
        via: tuple[float, float] | None = None,
        speed: str | None = None,
    ) -> Trip:
        if via is None:
            rx, ry = self.city.route(self.x, self.y, bx, by)
        else:
            ax, ay = self.city.route(self.x, self.y, *via)
            cx, cy = self.city.route(*via, bx, by)
            rx, ry = np.concatenate([ax, cx[1:]]), np.concatenate([ay, cy[1:]])
        seg = np.hypot(np.diff(rx), np.diff(ry))
        pieces = [
            (float(s), float(self.rng.uniform(60, 90) if s > 3000 else self.rng.uniform(30, 50)))
            for s in seg
        ]
        interval = int(
            self.rng.integers(self.cfg.moving_interval_s[0], self.cfg.moving_interval_s[1] + 1)
        )
        if speed is not None:
            pieces = _override(pieces, self.rng, speed)
            interval = 10
        trip = make_trip(self.t_ms, rx, ry, pieces, interval, label)
        self.plan.append(trip)
        self.x, self.y, self.t_ms = float(rx[-1]), float(ry[-1]), trip.t1_ms
        return trip


def _override(
    pieces: list[tuple[float, float]], rng: np.random.Generator, kind: str
) -> list[tuple[float, float]]:
    """Replaces the middle of a route's speed profile with a fast stretch."""
    total = sum(p[0] for p in pieces)
    if kind == "overspeed":
        fast_kmh = float(rng.uniform(135, 150))
        fast_m = fast_kmh / 3.6 * float(rng.uniform(100, 150))
    else:
        fast_kmh = float(rng.uniform(128, 140))
        fast_m = fast_kmh / 3.6 * float(rng.uniform(8, 18))
    start = max(500.0, (total - fast_m) / 2)
    return [(start, 70.0), (fast_m, fast_kmh), (max(total - start - fast_m, 200.0), 70.0)]


def _shop_near(
    city: City, rng: np.random.Generator, x: float, y: float, lo_m: float, hi_m: float
) -> tuple[float, float]:
    d = np.hypot(city.shops_xy[:, 0] - x, city.shops_xy[:, 1] - y)
    ok = np.nonzero((d >= lo_m) & (d <= hi_m))[0]
    if len(ok) == 0:
        ok = np.array([int(np.argmin(np.abs(d - (lo_m + hi_m) / 2)))])
    k = int(rng.choice(ok))
    return float(city.shops_xy[k, 0]), float(city.shops_xy[k, 1])


def _point_at(
    city: City, rng: np.random.Generator, x: float, y: float, lo_m: float, hi_m: float
) -> tuple[float, float]:
    """A point in the routine area between lo_m and hi_m from (x, y)."""
    best = (x, y)
    for _ in range(200):
        angle = rng.uniform(0, 2 * np.pi)
        dist = rng.uniform(lo_m, hi_m)
        px, py = x + dist * np.cos(angle), y + dist * np.sin(angle)
        if city.inside_routine(px, py, 1000.0):
            return float(px), float(py)
        best = (
            float(np.clip(px, -city.half_w_m + 1000, city.half_w_m - 1000)),
            float(np.clip(py, -city.half_h_m + 1000, city.half_h_m - 1000)),
        )
    return best


def routine_day(b: DayBuilder, v: VehicleSpec, day0_ms: int, weekday: bool) -> None:
    rng, city = b.rng, b.city
    hx, hy = v.home_xy
    if weekday and v.work_xy is not None:
        b.stay(day0_ms + 7 * HOUR_MS + int(rng.uniform(0, 90)) * MINUTE_MS, True, "home")
        b.drive(*v.work_xy, "commute")
        b.stay(day0_ms + 17 * HOUR_MS + int(rng.uniform(0, 120)) * MINUTE_MS, True, "work")
        if rng.random() < 0.5:
            b.drive(*_shop_near(city, rng, hx, hy, 300, 5000), "errand")
            b.stay_for(rng.uniform(30, 80), True, "shop")
        b.drive(hx, hy, "home")
    else:
        b.stay(day0_ms + 9 * HOUR_MS + int(rng.uniform(0, 240)) * MINUTE_MS, True, "home")
        for _ in range(int(rng.integers(1, 3))):
            b.drive(*_shop_near(city, rng, hx, hy, 300, 6000), "errand")
            b.stay_for(rng.uniform(30, 120), True, "shop")
        b.drive(hx, hy, "home")
    b.stay(day0_ms + DAY_MS, True, "home")


def _inside_point(fence: Fence, city: City, rng: np.random.Generator) -> tuple[float, float]:
    assert fence.radius_m is not None
    lon, lat = fence.geometry["coordinates"]
    cx, cy = city.frame.to_xy(lon, lat)
    r = rng.uniform(0, 0.3 * fence.radius_m)
    a = rng.uniform(0, 2 * np.pi)
    return float(cx) + r * float(np.cos(a)), float(cy) + r * float(np.sin(a))


def episode_day(
    b: DayBuilder,
    v: VehicleSpec,
    kind: str,
    day0_ms: int,
    layout: Layout,
    episode: Episode,
    trackings: list[Tracking],
) -> None:
    """Runs one day-time episode from home and back; fills in the episode's times."""
    rng, city = b.rng, b.city
    hx, hy = v.home_xy
    b.stay(
        day0_ms + 9 * HOUR_MS + 30 * MINUTE_MS + int(rng.uniform(0, 60)) * MINUTE_MS, True, "home"
    )
    dep = b.t_ms
    if kind in ("hotspot_dwell", "hotspot_short_stop"):
        fence = layout.hotspots[int(rng.integers(0, len(layout.hotspots) - 1))]
        episode.fence_id = fence.fence_id
        b.drive(*_inside_point(fence, city, rng), "to hotspot")
        minutes = rng.uniform(45, 70) if kind == "hotspot_dwell" else rng.uniform(8, 18)
        b.stay_for(minutes, False, "hotspot")
    elif kind == "market_dwell":
        episode.fence_id = "hot-market"
        b.drive(*layout.market_point_xy, "to market")
        b.stay_for(rng.uniform(45, 70), False, "market")
    elif kind == "hotspot_drive_by":
        fence = layout.hotspots[int(rng.integers(0, len(layout.hotspots) - 1))]
        episode.fence_id = fence.fence_id
        lon, lat = fence.geometry["coordinates"]
        cx, cy = city.frame.to_xy(lon, lat)
        b.drive(
            *_shop_near(city, rng, float(cx), float(cy), 2000, 8000),
            "drive-by",
            via=(float(cx), float(cy)),
        )
        b.stay_for(rng.uniform(30, 60), True, "shop")
    elif kind == "leave_area":
        episode.fence_id = v.allowed_area
        ring = b.cfg.city_margin_km * 1000.0
        side = int(rng.integers(0, 2))
        out = ring + rng.uniform(4000, 8000)
        if side == 0:
            target = (
                float(np.sign(hx) or 1.0) * (city.half_w_m + out),
                float(rng.uniform(-0.2, 0.2) * city.half_h_m),
            )
        else:
            target = (
                float(rng.uniform(-0.2, 0.2) * city.half_w_m),
                float(np.sign(hy) or 1.0) * (city.half_h_m + out),
            )
        b.drive(*target, "out of town")
        b.stay_for(rng.uniform(60, 120), False, "away")
    elif kind in ("zone_visit", "zone_visit_unlisted"):
        want_listed = kind == "zone_visit"
        choices = [z for z in layout.zones if z.applies_to(v.vehicle_id) == want_listed]
        both = [z for z in choices if len(z.notify) == 2]
        if both and (want_listed or rng.random() < 0.5):
            choices = both
        zone = choices[int(rng.integers(0, len(choices)))]
        episode.fence_id = zone.fence_id
        b.drive(*layout.zone_points_xy[zone.fence_id], "to zone")
        b.stay_for(rng.uniform(20, 40), False, "zone")
    elif kind in ("overspeed", "speed_burst"):
        b.drive(*_shop_near(city, rng, hx, hy, 9000, 20000), "fast drive", speed=kind)
        b.stay_for(rng.uniform(30, 60), True, "shop")
    elif kind in ("separation", "separation_short"):
        if kind == "separation":
            b.drive(*_point_at(city, rng, hx, hy, 8000, 14000), "away without the wireless unit")
            b.stay_for(rng.uniform(60, 90), False, "away")
        else:
            b.drive(
                *_point_at(city, rng, hx, hy, 3200, 3800), "short hop without the wireless unit"
            )
            b.stay_for(2, False, "hop")
    else:
        raise ValueError(f"unknown day episode {kind}")
    b.drive(hx, hy, "home")
    back = b.t_ms
    b.stay(day0_ms + DAY_MS, True, "home")
    episode.t0_ms, episode.t1_ms = dep, back
    if kind.startswith("separation"):
        trackings.append(Tracking(dep - 20 * MINUTE_MS, back + 20 * MINUTE_MS, hx, hy))


def merge_stays(plan: list[Segment]) -> list[Segment]:
    """Joins consecutive stays at the same place (home across midnight)."""
    out: list[Segment] = []
    for seg in plan:
        last = out[-1] if out else None
        if (
            isinstance(seg, Stay)
            and isinstance(last, Stay)
            and last.x_m == seg.x_m
            and last.y_m == seg.y_m
            and last.label == seg.label
        ):
            out[-1] = Stay(
                last.t0_ms, seg.t1_ms, last.x_m, last.y_m, last.safe and seg.safe, last.label
            )
        else:
            out.append(seg)
    return out
