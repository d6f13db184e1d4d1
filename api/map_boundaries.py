"""The offline basemap's administrative outlines, from the packaged boundary set.

Province, city or county outlines (`geofence.admin`, WGS-84) as a GeoJSON FeatureCollection
with `adcode`, `name` and `level`, simplified for drawing (a province to ~1 km, a city to
~500 m, a county to ~200 m: a map line, not a membership test). The counties are simplified
first and then merged on a grid of that tolerance, which keeps the merge cheap (the provinces:
~3 s of CPU, once per process, on the first map that asks; nothing for a process whose map is
never opened), and the slivers simplified neighbours leave between them are dropped.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from api.geocode import regions
from geofence.admin import AdminRegions

# Simplification per level, in degrees.
TOLERANCE_DEG = {"province": 0.01, "city": 0.005, "county": 0.002}
_built: dict[str, dict[str, Any]] = {}
_building = threading.Lock()


def outlines(source: AdminRegions, level: str) -> dict[str, Any]:
    """The units of `level` as a FeatureCollection (pure: `source` is immutable)."""
    tolerance = TOLERANCE_DEG[level]
    counties = shapely.simplify(
        np.array(source.outlines, dtype=object), tolerance, preserve_topology=True
    )
    groups: dict[str, tuple[str, list[int]]] = {}
    for i, unit in enumerate(source.units):
        code, name = {
            "province": (unit.province_adcode, unit.province),
            "city": (unit.city_adcode, unit.city),
            "county": (unit.adcode, unit.district),
        }[level]
        groups.setdefault(code, (name, []))[1].append(i)
    features = []
    for code, (name, members) in sorted(groups.items()):
        if len(members) == 1:
            shape = counties[members[0]]
        else:
            merged = shapely.union_all(counties[members], grid_size=tolerance)
            shape = _without_slivers(merged, tolerance)
        if shape.is_empty:
            continue
        features.append(
            {
                "type": "Feature",
                "properties": {"adcode": code, "name": name, "level": level},
                "geometry": json.loads(shapely.to_geojson(shape)),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _without_slivers(shape: BaseGeometry, tolerance: float) -> BaseGeometry:
    """The merged outline without the hairline gaps simplified neighbours leave between them:
    holes under (20 x tolerance)^2 (a real enclave, such as Beijing's in Hebei, is far larger)
    and specks under tolerance^2."""
    hole, speck = (20 * tolerance) ** 2, tolerance**2
    kept = []
    for part in shapely.get_parts(shape):
        if not isinstance(part, Polygon) or part.area < speck:
            continue
        inner = [ring for ring in part.interiors if Polygon(ring).area >= hole]
        kept.append(Polygon(part.exterior, inner))
    return MultiPolygon(kept) if len(kept) != 1 else kept[0]


def packaged_outlines(level: str) -> dict[str, Any]:
    """`outlines` of the packaged boundary set, built once per level per process."""
    if level not in TOLERANCE_DEG:
        raise ValueError(f"unknown level {level!r}")
    with _building:
        if level not in _built:
            _built[level] = outlines(regions(), level)
        return _built[level]
