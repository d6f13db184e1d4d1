"""Vectorized geofence engine: fences, fence sets, batch membership and transitions (L1).

Pure functions and small state objects over batches: no I/O, no clock (times come with the
data). The interface the rule layer uses, kept stable:

- `load_fences(source, *, crs=None, default_kind=None, repair=True) -> list[Fence]` from a
  GeoJSON FeatureCollection or Feature (a path or a parsed dict), contract properties (id, name,
  kind, notify, vehicles, radius_m on a Point, buffer_m on a LineString) plus an optional `crs`
  (wgs84, gcj02, bd09) per feature or per call. Raises `FenceError` naming file, feature (index
  and id) and field. `fences_to_geojson(fences)` writes them back.
- `Fence`: frozen dataclass (id, kind, geometry in WGS-84, name, notify, vehicles: frozenset[str]
  or None for all, radius_m, buffer_m, properties).
- `FenceSet(fences, version, vehicles=())`: immutable; `fences` is a tuple (fence index =
  position), `kinds` a uint8 array (`KIND_CODES`). `contains(lon, lat, vehicle)` takes float64
  lon/lat and an int32 index into `vehicles` per row and returns (row, fence) int64/int32 arrays
  sorted by row then fence; a fence with `vehicles` only matches rows of those vehicles.
  `with_vehicles(ids)` rebinds the vehicle list cheaply; `crossings(...)` finds fences a segment
  between two fixes passes through. A change builds a new set; swap it whole.
- `TransitionTracker(confirm_fixes=2).update(fence_set, row, fence, device, time_ms, valid)`
  returns `Transitions` columns (device, fence, kind ENTER/EXIT, time_ms of the first confirming
  fix, row of the confirming fix); `inside()` and `dwelling(now_ms, dwell_ms)` give stays and
  their start times. Results do not depend on how a device's stream is cut into batches, and a
  new fence set (by fence id) carries the state over.
- `SpotLibrary` and `load_spots(path)`: the shared risk-spot layer and each tenant's own.
- `geofence.admin`: China's county outlines shipped in geofence/data (`default_regions()`),
  `AdminRegions.resolve(lon, lat)` / `.places(...)` for batch reverse geocoding with a
  `FenceSet` of the counties, and `geometry_of(adcode)` for administrative fences (a feature
  with `"geometry": null` and an `adcode` property, `Fence.adcode`).

Exports resolve on first use (PEP 562), so a command pays only for the modules it touches
(the spot library, CRS conversion and their dependencies are not replay's).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geofence.crs import Crs, from_wgs84, to_wgs84
    from geofence.errors import FenceError
    from geofence.fenceset import KIND_CODES, FenceSet
    from geofence.geojson import fences_to_geojson, load_fences
    from geofence.model import Fence, FenceKind, Shape
    from geofence.spots import SpotLibrary, check_tenant, load_spots
    from geofence.transitions import ENTER, EXIT, Inside, Transitions, TransitionTracker

_HOME = {
    "Crs": "geofence.crs",
    "from_wgs84": "geofence.crs",
    "to_wgs84": "geofence.crs",
    "FenceError": "geofence.errors",
    "KIND_CODES": "geofence.fenceset",
    "FenceSet": "geofence.fenceset",
    "fences_to_geojson": "geofence.geojson",
    "load_fences": "geofence.geojson",
    "Fence": "geofence.model",
    "FenceKind": "geofence.model",
    "Shape": "geofence.model",
    "SpotLibrary": "geofence.spots",
    "check_tenant": "geofence.spots",
    "load_spots": "geofence.spots",
    "ENTER": "geofence.transitions",
    "EXIT": "geofence.transitions",
    "Inside": "geofence.transitions",
    "Transitions": "geofence.transitions",
    "TransitionTracker": "geofence.transitions",
}

__all__ = [
    "ENTER",
    "EXIT",
    "KIND_CODES",
    "Crs",
    "Fence",
    "FenceError",
    "FenceKind",
    "FenceSet",
    "Inside",
    "Shape",
    "SpotLibrary",
    "TransitionTracker",
    "Transitions",
    "check_tenant",
    "fences_to_geojson",
    "from_wgs84",
    "load_fences",
    "load_spots",
    "to_wgs84",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
