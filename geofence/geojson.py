"""GeoJSON in and out: contract fences (contracts section 3), validated with precise errors.

Every error names the source (file), the feature (index and id) and the field, because a risk
officer fixing a file needs to find the one bad coordinate among thousands.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from geofence.admin import default_regions
from geofence.crs import Crs, from_wgs84, to_wgs84
from geofence.errors import FenceError
from geofence.model import (
    MAX_BUFFER_M,
    MAX_RADIUS_M,
    MIN_BUFFER_M,
    MIN_RADIUS_M,
    NOTIFY_WORDS,
    Fence,
    FenceKind,
)

Source = str | Path | Mapping[str, Any]
_KNOWN = frozenset(
    {"id", "name", "kind", "notify", "vehicles", "radius_m", "buffer_m", "crs", "adcode"}
)
_ADMIN_KINDS = (FenceKind.ALLOWED_AREA, FenceKind.ZONE)


class _Bad(Exception):
    """Internal: a field problem, turned into a FenceError with the feature's location."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def load_fences(
    source: Source,
    *,
    crs: Crs | str | None = None,
    default_kind: FenceKind | None = None,
    repair: bool = True,
    name: str | None = None,
) -> list[Fence]:
    """Fences from a GeoJSON FeatureCollection or Feature (a path, or an already parsed dict).

    `crs` is the coordinate system of the input (a feature's own `crs` property wins); it is
    converted to WGS-84. `default_kind` fills a missing `kind` (a risk-spot file is all
    hotspots). Self-intersecting polygons are repaired (GEOS make_valid, keeping the polygonal
    part) when `repair`, refused otherwise. Raises FenceError naming file, feature and field.
    """
    label = name or (str(source) if isinstance(source, str | Path) else "<geojson>")
    document = _read(source, label)
    default_crs = _parse_crs(crs, label) if crs is not None else Crs.WGS84
    features = _features(document, label)
    fences: list[Fence] = []
    seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        fence_id = _peek_id(feature)
        try:
            fence = _fence(feature, default_crs, default_kind, repair)
        except _Bad as bad:
            where = f"feature {index}" + (f" (id {fence_id!r})" if fence_id else "")
            raise FenceError(f"{label}: {where}: {bad.field}: {bad.reason}") from None
        if fence.id in seen:
            raise FenceError(
                f"{label}: feature {index} (id {fence.id!r}): properties.id: duplicate of "
                f"feature {seen[fence.id]}"
            )
        seen[fence.id] = index
        fences.append(fence)
    return fences


def fences_to_geojson(fences: Sequence[Fence], crs: Crs = Crs.WGS84) -> dict[str, Any]:
    """A FeatureCollection that `load_fences` reads back to equal fences (given the same crs)."""
    features = []
    for fence in fences:
        geometry = fence.geometry
        if crs is not Crs.WGS84:
            geometry = shapely.transform(geometry, lambda xy: _convert_xy(xy, crs))
        properties: dict[str, Any] = dict(fence.properties)
        properties.update(id=fence.id, kind=str(fence.kind))
        if fence.name:
            properties["name"] = fence.name
        if fence.kind is FenceKind.ZONE:
            properties["notify"] = sorted(fence.notify)
        if fence.vehicles is not None:
            properties["vehicles"] = sorted(fence.vehicles)
        if fence.radius_m is not None:
            properties["radius_m"] = fence.radius_m
        if fence.buffer_m is not None:
            properties["buffer_m"] = fence.buffer_m
        if fence.adcode is not None:
            # The unit, not its outline: a province is thousands of vertices, and the packaged
            # set may be rebuilt with better outlines.
            properties["adcode"] = fence.adcode
            features.append({"type": "Feature", "properties": properties, "geometry": None})
            continue
        if crs is not Crs.WGS84:
            properties["crs"] = str(crs)
        features.append(
            {"type": "Feature", "properties": properties, "geometry": mapping(geometry)}
        )
    # Through JSON once so numpy/tuple coordinates become plain lists, as a parser would give.
    collection: dict[str, Any] = json.loads(
        json.dumps({"type": "FeatureCollection", "features": features})
    )
    return collection


def _convert_xy(xy: npt.NDArray[np.float64], crs: Crs) -> npt.NDArray[np.float64]:
    lon, lat = from_wgs84(xy[:, 0], xy[:, 1], crs)
    return np.column_stack([lon, lat])


def _read(source: Source, label: str) -> Any:
    if not isinstance(source, str | Path):
        return source
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise FenceError(f"{label}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FenceError(f"{label}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FenceError(
            f"{label}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None


def _features(document: Any, label: str) -> list[Any]:
    if not isinstance(document, Mapping):
        raise FenceError(f"{label}: type: expected a GeoJSON FeatureCollection or Feature")
    kind = document.get("type")
    if kind == "Feature":
        return [document]
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise FenceError(f"{label}: features: expected a list")
        return features
    raise FenceError(f"{label}: type: expected FeatureCollection or Feature, got {kind!r}")


def _peek_id(feature: Any) -> str | None:
    if isinstance(feature, Mapping):
        props = feature.get("properties")
        if isinstance(props, Mapping) and isinstance(props.get("id"), str | int):
            return str(props["id"])
    return None


def _parse_crs(value: Any, field: str) -> Crs:
    if isinstance(value, Crs):
        return value
    if not isinstance(value, str):
        raise _Bad(field, "expected wgs84, gcj02 or bd09")
    try:
        return Crs.parse(value)
    except ValueError as exc:
        raise _Bad(field, str(exc)) from None


def _fence(feature: Any, default_crs: Crs, default_kind: FenceKind | None, repair: bool) -> Fence:
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise _Bad("type", "expected a GeoJSON Feature")
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        raise _Bad("properties", "expected an object")
    fence_id = props.get("id")
    if isinstance(fence_id, int) and not isinstance(fence_id, bool):
        fence_id = str(fence_id)
    if not isinstance(fence_id, str) or not fence_id.strip():
        raise _Bad("properties.id", "required, a non-empty string")
    name = props.get("name", "")
    if name is None:
        name = ""
    if not isinstance(name, str):
        raise _Bad("properties.name", "expected a string")
    kind = _kind(props.get("kind"), default_kind)
    notify = _notify(props.get("notify"), kind)
    vehicles = _vehicles(props.get("vehicles"))
    crs = _parse_crs(props["crs"], "properties.crs") if "crs" in props else default_crs
    geometry_json = feature.get("geometry")
    if geometry_json is None and "adcode" in props:
        adcode, geometry, unit_name = _administrative(props["adcode"], kind)
        extra = {k: v for k, v in props.items() if k not in _KNOWN}
        return Fence(
            id=fence_id,
            kind=kind,
            geometry=geometry,
            name=name or unit_name,
            notify=notify,
            vehicles=vehicles,
            adcode=adcode,
            properties=extra,
        )
    if not isinstance(geometry_json, Mapping):
        raise _Bad(
            "geometry",
            "expected a GeoJSON geometry object (or null with properties.adcode naming an"
            " administrative unit)",
        )
    geom_type = geometry_json.get("type")
    coords = geometry_json.get("coordinates")
    radius_m = buffer_m = None
    if geom_type in ("Polygon", "MultiPolygon"):
        for key in ("radius_m", "buffer_m"):
            if props.get(key) is not None:
                raise _Bad(f"properties.{key}", f"not allowed on a {geom_type}")
        geometry = _polygonal(geom_type, coords, crs, repair)
    elif geom_type == "Point":
        radius_m = _metres(props.get("radius_m"), "properties.radius_m", MIN_RADIUS_M, MAX_RADIUS_M)
        lon, lat = _position(coords, "geometry.coordinates")
        geometry = shapely.points(*_wgs84(np.array([[lon, lat]]), crs)[0])
    elif geom_type == "LineString":
        buffer_m = _metres(props.get("buffer_m"), "properties.buffer_m", MIN_BUFFER_M, MAX_BUFFER_M)
        line = _positions(coords, "geometry.coordinates", minimum=2)
        geometry = shapely.linestrings(_wgs84(line, crs))
        if shapely.length(geometry) == 0.0:
            raise _Bad("geometry.coordinates", "a corridor line needs two distinct positions")
    else:
        raise _Bad(
            "geometry.type",
            f"expected Polygon, MultiPolygon, Point or LineString, got {geom_type!r}",
        )
    extra = {k: v for k, v in props.items() if k not in _KNOWN}
    return Fence(
        id=fence_id,
        kind=kind,
        geometry=geometry,
        name=name,
        notify=notify,
        vehicles=vehicles,
        radius_m=radius_m,
        buffer_m=buffer_m,
        properties=extra,
    )


def _administrative(value: Any, kind: FenceKind) -> tuple[str, BaseGeometry, str]:
    """(adcode, outline, unit name) of an administrative fence: a province (`330000`), city
    (`330100`) or county (`330106`) of China, as an `allowed_area` or a `zone`."""
    field = "properties.adcode"
    if kind not in _ADMIN_KINDS:
        raise _Bad(
            field, f"only an allowed_area or a zone may name an administrative unit, not a {kind}"
        )
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) != 6 or not value.isascii() or not value.isdigit():
        raise _Bad(field, 'expected a 6-digit administrative code, such as "330000"')
    regions = default_regions()
    geometry = regions.geometry_of(value)
    name = regions.name_of(value)
    if geometry is None or name is None:
        raise _Bad(field, f"no administrative unit {value} (a province, city or county code)")
    return value, geometry, name


def _kind(value: Any, default: FenceKind | None) -> FenceKind:
    if value is None:
        if default is None:
            raise _Bad("properties.kind", "required: hotspot, allowed_area or zone")
        return default
    try:
        return FenceKind(value)
    except ValueError:
        raise _Bad(
            "properties.kind", f"unknown kind {value!r} (expected hotspot, allowed_area or zone)"
        ) from None


def _notify(value: Any, kind: FenceKind) -> frozenset[str]:
    if value is None:
        return NOTIFY_WORDS
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad("properties.notify", "expected a list of 'enter', 'exit'")
    unknown = set(value) - NOTIFY_WORDS
    if unknown:
        raise _Bad("properties.notify", f"unknown word {sorted(unknown)[0]!r} (enter, exit)")
    if kind is not FenceKind.ZONE and set(value) != NOTIFY_WORDS:
        raise _Bad("properties.notify", f"only a zone takes notify, not a {kind}")
    return frozenset(value)


def _vehicles(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Bad("properties.vehicles", "expected a list of vehicle id strings")
    return frozenset(value)


def _metres(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(field, "required, a number of metres")
    metres = float(value)
    if not (math.isfinite(metres) and low <= metres <= high):
        raise _Bad(field, f"{value} out of range [{low:g}, {high:g}] m")
    return metres


def _position(value: Any, field: str) -> tuple[float, float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) < 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value[:2])
    ):
        raise _Bad(field, "expected a [lon, lat] position")
    lon, lat = float(value[0]), float(value[1])
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise _Bad(field, f"longitude {value[0]} out of range [-180, 180]")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise _Bad(field, f"latitude {value[1]} out of range [-90, 90]")
    return lon, lat


def _positions(value: Any, field: str, minimum: int) -> npt.NDArray[np.float64]:
    if not isinstance(value, list) or len(value) < minimum:
        raise _Bad(field, f"expected a list of at least {minimum} positions")
    return np.array([_position(p, f"{field}[{i}]") for i, p in enumerate(value)], np.float64)


def _ring(value: Any, field: str) -> npt.NDArray[np.float64]:
    ring = _positions(value, field, minimum=3)
    if not np.array_equal(ring[0], ring[-1]):
        ring = np.vstack([ring, ring[:1]])  # tolerate an unclosed ring: close it
    if len(np.unique(ring[:-1], axis=0)) < 3:
        raise _Bad(field, "a ring needs at least three distinct positions")
    return ring


def _wgs84(xy: npt.NDArray[np.float64], crs: Crs) -> npt.NDArray[np.float64]:
    if crs is Crs.WGS84:
        return xy
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1], crs)
    return np.column_stack([lon, lat])


def _polygonal(geom_type: str, coords: Any, crs: Crs, repair: bool) -> BaseGeometry:
    field = "geometry.coordinates"
    parts = [coords] if geom_type == "Polygon" else coords
    if not isinstance(parts, list) or not parts:
        raise _Bad(field, f"expected a {geom_type} coordinate list")
    polygons = []
    for p, rings in enumerate(parts):
        where = field if geom_type == "Polygon" else f"{field}[{p}]"
        if not isinstance(rings, list) or not rings:
            raise _Bad(where, "expected a list of rings")
        shell, *holes = (_wgs84(_ring(r, f"{where}[{i}]"), crs) for i, r in enumerate(rings))
        # Holes as ring geometries: shapely stacks raw coordinate arrays into one array, which
        # fails for holes of different lengths.
        rings_of_holes = [shapely.linearrings(h) for h in holes] if holes else None
        polygons.append(shapely.polygons(shell, holes=rings_of_holes))
    geometry = polygons[0] if geom_type == "Polygon" else shapely.multipolygons(polygons)
    if shapely.is_valid(geometry):
        return geometry
    reason = shapely.is_valid_reason(geometry)
    if not repair:
        raise _Bad(field, f"invalid polygon: {reason}")
    fixed = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
    polygonal = shapely.get_parts(fixed)
    polygonal = polygonal[np.isin(shapely.get_type_id(polygonal), [3, 6])]
    if len(polygonal) == 0 or shapely.area(shapely.union_all(polygonal)) == 0.0:
        raise _Bad(field, f"invalid polygon that cannot be repaired: {reason}")
    merged = shapely.union_all(polygonal)
    return merged if merged.geom_type in ("Polygon", "MultiPolygon") else shapely.normalize(merged)
