"""A planted gathering: cars of different borrowers each parking for hours at one place that
is no known risk spot (a new pawn yard, a fraud ring's car park). The place and the visits are
the ground truth `gathering` must find (scenario file spots.json)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.config import ScenarioConfig
from simulators.layout import Layout, VehicleSpec
from simulators.routine import DayBuilder
from simulators.timefmt import DAY_MS, HOUR_MS, MINUTE_MS

CLEAR_OF_FENCES_M = 2500.0
CLEAR_OF_USUAL_M = 2000.0


@dataclass(frozen=True, slots=True)
class PlantedVisit:
    vehicle_id: str
    arrive_ms: int  # planned: the car arrives a little later (it drives there first)
    stay_min: float


@dataclass(frozen=True, slots=True)
class PlantedSpot:
    x_m: float
    y_m: float
    lon: float
    lat: float
    visits: tuple[PlantedVisit, ...]
    slots: frozenset[tuple[int, int]]  # (vehicle index, day) replaced by a visit


def plan_gathering(
    cfg: ScenarioConfig,
    city: City,
    vehicles: Sequence[VehicleSpec],
    layout: Layout,
    taken: set[tuple[int, int]],
    start_ms: int,
) -> PlantedSpot | None:
    """Picks a place far from every fence and `cfg.gathering_cars` cars living and working far
    from it, each visiting on a day after its first (its home is known by then). Draws from an
    RNG of its own, so the rest of the scenario is the same with or without it."""
    if cfg.gathering_cars <= 0 or cfg.days < 2:
        return None
    rng = np.random.default_rng([cfg.seed, 4242])
    fence_xy = [
        city.frame.to_xy(*f.geometry["coordinates"])
        for f in layout.fences
        if f.geometry.get("type") == "Point"
    ]
    for _ in range(500):
        x = float(rng.uniform(-city.half_w_m + 2000, city.half_w_m - 2000))
        y = float(rng.uniform(-city.half_h_m + 2000, city.half_h_m - 2000))
        if any(np.hypot(x - fx, y - fy) < CLEAR_OF_FENCES_M for fx, fy in fence_xy):
            continue
        far = [
            i
            for i, v in enumerate(vehicles)
            if np.hypot(x - v.home_xy[0], y - v.home_xy[1]) > CLEAR_OF_USUAL_M
            and (
                v.work_xy is None or np.hypot(x - v.work_xy[0], y - v.work_xy[1]) > CLEAR_OF_USUAL_M
            )
        ]
        if len(far) < cfg.gathering_cars:
            continue
        chosen = sorted(rng.choice(far, size=cfg.gathering_cars, replace=False).tolist())
        visits: list[PlantedVisit] = []
        slots: set[tuple[int, int]] = set()
        for vi in chosen:
            days = [d for d in range(1, cfg.days) if (vi, d) not in taken]
            if not days:
                break
            d = int(rng.choice(days))
            slots.add((vi, d))
            arrive = start_ms + d * DAY_MS + 10 * HOUR_MS + int(rng.integers(0, 180)) * MINUTE_MS
            visits.append(
                PlantedVisit(vehicles[vi].vehicle_id, arrive, float(rng.uniform(180, 300)))
            )
        else:
            lon, lat = city.frame.to_lonlat(x, y)
            return PlantedSpot(x, y, float(lon), float(lat), tuple(visits), frozenset(slots))
    return None


def gathering_day(b: DayBuilder, v: VehicleSpec, day0_ms: int, spot: PlantedSpot) -> None:
    """Home in the morning, a drive to the spot, hours parked there, home for the night."""
    visit = next(p for p in spot.visits if p.vehicle_id == v.vehicle_id)
    b.stay(visit.arrive_ms - 20 * MINUTE_MS, True, "home")
    b.drive(spot.x_m, spot.y_m, "to gathering")
    b.stay_for(visit.stay_min, True, "gathering")
    b.drive(*v.home_xy, "home")
    b.stay(day0_ms + DAY_MS, True, "home")
