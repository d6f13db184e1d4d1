"""The demo's city: Hangzhou in a local metric frame, its fences, and where routine traffic may go.

Every fence is drawn in metres around the frame's centre and written as the contract's GeoJSON
(WGS-84 lon/lat). Routine cars are laid out so their whole drive stays well inside the allowed
area and far from every hotspot and zone (`clear_route`): the only alerts come from the script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import LineString, Point, Polygon

from simulators.fences import Fence, circle, ring_lonlat
from simulators.geo import LocalFrame

# West Lake's north-east shore, the old centre of Hangzhou (WGS-84).
FRAME = LocalFrame(120.17, 30.28)
METRO_ID = "hangzhou-metro"
ZONE_ID = "xihu-scenic"
PAWN_ID = "pawn-gongshu"

# The allowed area every car shares: the main urban districts (about 48 x 40 km).
METRO_XY: tuple[tuple[float, float], ...] = (
    (-24_000.0, -12_000.0),
    (-16_000.0, -20_000.0),
    (16_000.0, -20_000.0),
    (24_000.0, -10_000.0),
    (24_000.0, 14_000.0),
    (14_000.0, 20_000.0),
    (-16_000.0, 20_000.0),
    (-24_000.0, 10_000.0),
)
METRO_WEST_X_M = -24_000.0  # the straight western edge, from y -12 km to +10 km


@dataclass(frozen=True, slots=True)
class Hotspot:
    fence_id: str
    name: str
    x_m: float
    y_m: float
    radius_m: float


HOTSPOTS: tuple[Hotspot, ...] = (
    Hotspot(PAWN_ID, "Gongshu pawn shop, Moganshan Road", -2_600.0, 5_200.0, 150.0),
    Hotspot("usedcar-jianggan", "Jianggan used-car market", 8_200.0, 2_600.0, 300.0),
    Hotspot("mortgage-xiaoshan", "Xiaoshan car-mortgage lot", 5_200.0, -13_800.0, 200.0),
    Hotspot("pawn-yuhang", "Yuhang pawn shop, Wenyi West Road", -14_000.0, 9_000.0, 150.0),
)

# A zone with enter and exit notices: the West Lake scenic area (x west-east, y south-north).
ZONE_XY: tuple[tuple[float, float], ...] = (
    (-4_200.0, -5_200.0),
    (-1_800.0, -5_200.0),
    (-1_800.0, -3_000.0),
    (-4_200.0, -3_000.0),
)

ROUTINE_CLEARANCE_M = 1_000.0  # routine drives keep this far from any hotspot or zone
ROUTINE_INSET_M = 3_000.0  # and this far inside the allowed area


def hotspot(fence_id: str) -> Hotspot:
    return next(h for h in HOTSPOTS if h.fence_id == fence_id)


def demo_fence_list(vehicle_ids: Sequence[str]) -> list[Fence]:
    """The demo's fences; the allowed area lists every vehicle (an allowed area applies only to
    the vehicles it names)."""
    fences = [
        Fence(
            METRO_ID,
            "Hangzhou urban districts",
            "allowed_area",
            {"type": "Polygon", "coordinates": [ring_lonlat(FRAME, list(METRO_XY), 2_000.0)]},
            vehicles=tuple(vehicle_ids),
        ),
        Fence(
            ZONE_ID,
            "West Lake scenic area",
            "zone",
            {"type": "Polygon", "coordinates": [ring_lonlat(FRAME, list(ZONE_XY), 500.0)]},
            notify=("enter", "exit"),
        ),
    ]
    for spot in HOTSPOTS:
        lon, lat = FRAME.to_lonlat(spot.x_m, spot.y_m)
        fences.append(circle(spot.fence_id, spot.name, float(lon), float(lat), spot.radius_m))
    return fences


def feature_collection(fences: Sequence[Fence]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [f.feature() for f in fences]}


_METRO = Polygon(METRO_XY)
_ROUTINE_AREA = _METRO.buffer(-ROUTINE_INSET_M)
_AVOID = shapely.union_all(
    [Polygon(ZONE_XY), *(Point(h.x_m, h.y_m).buffer(h.radius_m) for h in HOTSPOTS)]
)


def clear_route(xy: Sequence[tuple[float, float]]) -> bool:
    """True when a drive along these points (metres) stays deep inside the allowed area and
    keeps its distance from every hotspot and zone."""
    path = LineString(xy) if len(xy) > 1 else Point(xy[0])
    return bool(_ROUTINE_AREA.contains(path)) and path.distance(_AVOID) > ROUTINE_CLEARANCE_M


def in_metro(x_m: float, y_m: float) -> bool:
    return bool(_METRO.contains(Point(x_m, y_m)))


def in_zone(x_m: float, y_m: float) -> bool:
    return bool(Polygon(ZONE_XY).contains(Point(x_m, y_m)))
