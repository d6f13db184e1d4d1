"""Hand-made tracks for rule tests: rows of positions.csv built from a few lines of Python."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.model import Alert
from geofence import Fence, load_fences
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.fleet import Fleet, Vehicle
from pipeline.replay import replay
from pipeline.thresholds import RuleBook

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
HOME = (121.40, 31.20)  # lon, lat
M_PER_DEG_LAT = 111_195.0


@dataclass(frozen=True)
class Fix:
    device: str
    minute: float
    lon: float
    lat: float
    speed_kmh: float = 0.0
    alarm: int = 0
    status: int = 3


def east(lon_lat: tuple[float, float], metres: float) -> tuple[float, float]:
    lon, lat = lon_lat
    return lon + metres / (M_PER_DEG_LAT * math.cos(math.radians(lat))), lat


def stay(device: str, at: tuple[float, float], minutes: Iterable[float], **kw: Any) -> list[Fix]:
    """A parked car: one position, ignition off unless `status` says otherwise."""
    kw.setdefault("status", 2)
    return [Fix(device, m, at[0], at[1], **kw) for m in minutes]


def drive(
    device: str,
    start: tuple[float, float],
    speed_kmh: float,
    minutes: Iterable[float],
    t0: float | None = None,
) -> list[Fix]:
    """Due east at a constant speed; position at minute m is start + speed * (m - t0)."""
    ms = list(minutes)
    origin = ms[0] if t0 is None else t0
    return [
        Fix(device, m, *east(start, speed_kmh / 3.6 * (m - origin) * 60), speed_kmh=speed_kmh)
        for m in ms
    ]


def csv_bytes(fixes: Sequence[Fix]) -> bytes:
    lines = ["device_id,time,lat,lon,speed_kmh,course,alarm,status"]
    for f in fixes:
        stamp = (T0 + timedelta(minutes=f.minute)).isoformat()
        lines.append(
            f"{f.device},{stamp},{f.lat:.7f},{f.lon:.7f},{f.speed_kmh},0,{f.alarm},{f.status}"
        )
    return ("\n".join(lines) + "\n").encode()


def minute_ms(minute: float) -> int:
    return int((T0 + timedelta(minutes=minute)).timestamp() * 1000)


def circle(
    fence_id: str, kind: str, at: tuple[float, float], radius_m: float, **props: Any
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"id": fence_id, "kind": kind, "radius_m": radius_m, **props},
        "geometry": {"type": "Point", "coordinates": list(at)},
    }


def fences(*features: dict[str, Any]) -> list[Fence]:
    return load_fences({"type": "FeatureCollection", "features": list(features)})


def fleet(**vehicles: Sequence[str]) -> Fleet:
    return Fleet(tuple(Vehicle(v, tuple(d)) for v, d in vehicles.items()))


def run(
    fixes: Sequence[Fix],
    fence_list: Sequence[Fence] = (),
    fleet_spec: Fleet | None = None,
    batch_rows: int = 1 << 20,
    rules: RuleBook | None = None,
) -> list[Alert]:
    engine = Engine(fleet=fleet_spec, fences=fence_list, rules=rules)
    return replay(read_positions_csv(csv_bytes(fixes)), engine, batch_rows).alerts


def of_type(alerts: Sequence[Alert], kind: str) -> list[Alert]:
    return [a for a in alerts if a.type.value == kind]
