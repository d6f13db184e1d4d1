"""Vehicles, their places and the fence set, laid out so routine life never meets a fence.

Homes, work places and shops stay well away from hotspots, zones sit in the ring between the
routine area and the city boundary, and every allowed area lists its vehicles explicitly; the
only fence events in background traffic are drive-bys through hotspots, which cannot alert.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.city import City
from simulators.config import ScenarioConfig
from simulators.fences import Fence, circle, ring_lonlat
from simulators.geo import LocalFrame

HOTSPOT_CLEARANCE_M = 700.0


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    vehicle_id: str
    wired_id: str
    wireless_id: str | None
    allowed_area: str | None
    home_xy: tuple[float, float]
    work_xy: tuple[float, float] | None

    @property
    def devices(self) -> tuple[str, ...]:
        return (self.wired_id,) if self.wireless_id is None else (self.wired_id, self.wireless_id)


@dataclass(frozen=True, slots=True)
class Layout:
    vehicles: tuple[VehicleSpec, ...]
    fences: tuple[Fence, ...]
    hotspots: tuple[Fence, ...]
    zones: tuple[Fence, ...]
    zone_points_xy: dict[str, tuple[float, float]]  # a point well inside each zone
    market_point_xy: tuple[float, float]


def build_vehicles(cfg: ScenarioConfig, city: City, rng: np.random.Generator) -> list[VehicleSpec]:
    vehicles: list[VehicleSpec] = []
    for v in range(cfg.vehicles):
        wireless = bool(rng.random() < cfg.wireless_share)
        if v == 0:
            wireless = False  # at least one single-unit car for the location incidents
        elif v == 1:
            wireless = True  # and at least one with two units for separation
        draw = rng.random()
        allowed = "city" if draw < 0.7 or v == 0 else ("province" if draw < 0.9 else None)
        hx = float(rng.uniform(-city.half_w_m + 1000, city.half_w_m - 1000))
        hy = float(rng.uniform(-city.half_h_m + 1000, city.half_h_m - 1000))
        work: tuple[float, float] | None = None
        if rng.random() < 0.85:
            angle = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(3000, 10000)
            wx = float(
                np.clip(hx + dist * np.cos(angle), -city.half_w_m + 1000, city.half_w_m - 1000)
            )
            wy = float(
                np.clip(hy + dist * np.sin(angle), -city.half_h_m + 1000, city.half_h_m - 1000)
            )
            work = (wx, wy)
        number = f"{v + 1:06d}"
        vehicles.append(
            VehicleSpec(
                vehicle_id=f"V{v + 1:04d}",
                wired_id=f"0139{number}01",
                wireless_id=f"0139{number}02" if wireless else None,
                allowed_area=allowed,
                home_xy=(hx, hy),
                work_xy=work,
            )
        )
    return vehicles


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _octagon(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    angles = np.arange(8) * np.pi / 4 + np.pi / 8
    return [(cx + r * float(np.cos(a)), cy + r * float(np.sin(a))) for a in angles]


def _polygon(frame: LocalFrame, xy: list[tuple[float, float]]) -> dict[str, object]:
    return {"type": "Polygon", "coordinates": [ring_lonlat(frame, xy, 1000.0)]}


def build_layout(
    cfg: ScenarioConfig, city: City, vehicles: list[VehicleSpec], rng: np.random.Generator
) -> Layout:
    frame = city.frame
    places = [v.home_xy for v in vehicles] + [v.work_xy for v in vehicles if v.work_xy is not None]
    places += [(float(x), float(y)) for x, y in city.shops_xy]
    place_arr = np.array(places)

    def clear(x: float, y: float, need_m: float, taken: list[tuple[float, float]]) -> bool:
        if np.min(np.hypot(place_arr[:, 0] - x, place_arr[:, 1] - y)) < need_m:
            return False
        return all(np.hypot(tx - x, ty - y) >= 2000.0 for tx, ty in taken)

    taken: list[tuple[float, float]] = []
    hotspots: list[Fence] = []
    n_hot = max(6, cfg.vehicles // 10)
    names = ("pawn shop", "used-car market", "car pledge office", "secondary-mortgage spot")
    attempts = 0
    while len(hotspots) < n_hot and attempts < 20000:
        attempts += 1
        x = float(rng.uniform(-city.half_w_m + 1500, city.half_w_m - 1500))
        y = float(rng.uniform(-city.half_h_m + 1500, city.half_h_m - 1500))
        radius = float(rng.uniform(50.0, 300.0))
        if not clear(x, y, HOTSPOT_CLEARANCE_M + radius, taken):
            continue
        taken.append((x, y))
        lon, lat = frame.to_lonlat(x, y)
        k = len(hotspots) + 1
        hotspots.append(
            circle(f"hot-{k:03d}", f"{names[k % len(names)]} {k}", float(lon), float(lat), radius)
        )
    market_xy = (0.0, 0.0)
    for _ in range(20000):
        x = float(rng.uniform(-city.half_w_m + 2000, city.half_w_m - 2000))
        y = float(rng.uniform(-city.half_h_m + 2000, city.half_h_m - 2000))
        if clear(x, y, HOTSPOT_CLEARANCE_M + 400.0, taken):
            market_xy = (x, y)
            taken.append(market_xy)
            break
    mx, my = market_xy
    market = Fence(
        "hot-market",
        "used-car market",
        "hotspot",
        _polygon(
            frame,
            [
                (mx - 350, my - 200),
                (mx + 350, my - 250),
                (mx + 300, my + 250),
                (mx - 300, my + 200),
            ],
        ),
    )
    hotspots.append(market)

    # Zones live in the ring between the routine area and the city boundary.
    hw, hh, ring = city.half_w_m, city.half_h_m, cfg.city_margin_km * 1000.0
    mid = ring / 2
    listed = tuple(v.vehicle_id for v in vehicles[::3])
    airport_xy = (hw + mid, 0.3 * hh)
    zones = [
        Fence(
            "zone-airport",
            "airport",
            "zone",
            _polygon(frame, _octagon(*airport_xy, 1500.0)),
            notify=("enter", "exit"),
        ),
        Fence(
            "zone-logistics",
            "logistics park",
            "zone",
            _polygon(frame, _rect(-0.4 * hw, hh + mid - 1200, -0.4 * hw + 3000, hh + mid + 1200)),
            notify=("enter", "exit"),
            vehicles=listed,
        ),
        Fence(
            "zone-port",
            "port terminals",
            "zone",
            {
                "type": "MultiPolygon",
                "coordinates": [
                    [
                        ring_lonlat(
                            frame,
                            _rect(-hw - mid - 1200, -0.5 * hh, -hw - mid + 1200, -0.5 * hh + 2000),
                            1000.0,
                        )
                    ],
                    [
                        ring_lonlat(
                            frame,
                            _rect(-hw - mid - 1200, 0.2 * hh, -hw - mid + 1200, 0.2 * hh + 2000),
                            1000.0,
                        )
                    ],
                ],
            },
            notify=("enter",),
        ),
        Fence(
            "zone-south-depot",
            "south depot road",
            "zone",
            {
                "type": "LineString",
                "coordinates": [
                    [round(float(c), 6) for c in frame.to_lonlat(0.1 * hw, -hh - mid)],
                    [round(float(c), 6) for c in frame.to_lonlat(0.1 * hw + 2500, -hh - mid)],
                    [
                        round(float(c), 6)
                        for c in frame.to_lonlat(0.1 * hw + 2500, -hh - mid - 1500)
                    ],
                ],
            },
            notify=("exit",),
            buffer_m=250.0,
        ),
    ]
    zone_points = {
        "zone-airport": airport_xy,
        "zone-logistics": (-0.4 * hw + 1500, hh + mid),
        "zone-port": (-hw - mid, -0.5 * hh + 1000),
        "zone-south-depot": (0.1 * hw + 1200, -hh - mid),
    }
    city_ids = tuple(v.vehicle_id for v in vehicles if v.allowed_area == "city")
    province_ids = tuple(v.vehicle_id for v in vehicles if v.allowed_area == "province")
    areas = [
        Fence(
            "city",
            "city limits",
            "allowed_area",
            _polygon(frame, _rect(-hw - ring, -hh - ring, hw + ring, hh + ring)),
            vehicles=city_ids,
        ),
        Fence(
            "province",
            "province",
            "allowed_area",
            _polygon(frame, _rect(-hw - 60000, -hh - 60000, hw + 60000, hh + 60000)),
            vehicles=province_ids,
        ),
    ]
    fences = (*hotspots, *zones, *areas)
    return Layout(tuple(vehicles), fences, tuple(hotspots), tuple(zones), zone_points, market_xy)
