"""Fences as the contract's GeoJSON features, and the geometry the truth oracle needs.

Circles are measured on the ground (haversine); polygons are planar in lon/lat, as shapely sees
them, with edges kept short so that every reasonable engine draws the same boundary; corridors
are a distance to a line in a local metric frame. `band` marks fixes too close to a boundary for
the side to be certain under any engine's choice of distance: the generator keeps valid fixes out
of it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape

from simulators.geo import FloatArray, LocalFrame, haversine_m

KINDS = ("hotspot", "allowed_area", "zone")
NOTIFY = ("enter", "exit")
BoolArray = npt.NDArray[np.bool_]


class FenceFormatError(ValueError):
    """A fence feature breaks contracts section 3; the message names the feature and field."""


@dataclass(frozen=True, slots=True)
class Fence:
    """One GeoJSON feature: `geometry` is the GeoJSON geometry mapping (lon/lat)."""

    fence_id: str
    name: str
    kind: str
    geometry: dict[str, Any]
    notify: tuple[str, ...] = ()
    vehicles: tuple[str, ...] | None = None
    radius_m: float | None = None
    buffer_m: float | None = None

    def applies_to(self, vehicle_id: str) -> bool:
        return self.vehicles is None or vehicle_id in self.vehicles

    def feature(self) -> dict[str, Any]:
        props: dict[str, Any] = {"id": self.fence_id, "name": self.name, "kind": self.kind}
        if self.kind == "zone":
            props["notify"] = list(self.notify)
        if self.vehicles is not None:
            props["vehicles"] = list(self.vehicles)
        if self.radius_m is not None:
            props["radius_m"] = self.radius_m
        if self.buffer_m is not None:
            props["buffer_m"] = self.buffer_m
        return {"type": "Feature", "properties": props, "geometry": self.geometry}


def fence_from_feature(feature: Any, where: str) -> Fence:
    """Parses one feature; `where` prefixes error messages (file and feature number)."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise FenceFormatError(f"{where}: field type: expected a GeoJSON Feature")
    props = feature.get("properties")
    geometry = feature.get("geometry")
    if not isinstance(props, dict):
        raise FenceFormatError(f"{where}: field properties: expected an object")
    fence_id = props.get("id")
    if not isinstance(fence_id, str) or not fence_id:
        raise FenceFormatError(f"{where}: field properties.id: expected a non-empty string")
    kind = props.get("kind")
    if kind not in KINDS:
        raise FenceFormatError(f"{where}: field properties.kind: expected one of {KINDS}")
    notify = props.get("notify", [])
    if not isinstance(notify, list) or any(n not in NOTIFY for n in notify):
        raise FenceFormatError(f"{where}: field properties.notify: expected a list of {NOTIFY}")
    vehicles = props.get("vehicles")
    if vehicles is not None and (
        not isinstance(vehicles, list) or not all(isinstance(v, str) for v in vehicles)
    ):
        raise FenceFormatError(f"{where}: field properties.vehicles: expected a list of strings")
    if not isinstance(geometry, dict) or geometry.get("type") not in (
        "Polygon",
        "MultiPolygon",
        "Point",
        "LineString",
    ):
        raise FenceFormatError(
            f"{where}: field geometry.type: expected Polygon, MultiPolygon, Point or LineString"
        )
    radius = props.get("radius_m")
    buffer = props.get("buffer_m")
    if geometry["type"] == "Point" and not (isinstance(radius, int | float) and radius > 0):
        raise FenceFormatError(f"{where}: field properties.radius_m: a Point needs radius_m > 0")
    if geometry["type"] == "LineString" and not (isinstance(buffer, int | float) and buffer > 0):
        raise FenceFormatError(
            f"{where}: field properties.buffer_m: a LineString needs buffer_m > 0"
        )
    try:
        shape(geometry)
    except Exception as exc:  # shapely raises several types for bad coordinates
        raise FenceFormatError(f"{where}: field geometry.coordinates: {exc}") from exc
    return Fence(
        fence_id=fence_id,
        name=str(props.get("name", fence_id)),
        kind=kind,
        geometry=geometry,
        notify=tuple(notify),
        vehicles=None if vehicles is None else tuple(vehicles),
        radius_m=None if radius is None else float(radius),
        buffer_m=None if buffer is None else float(buffer),
    )


def margin_m(fence: Fence) -> float:
    """Half-width of the uncertain band around a boundary."""
    if fence.radius_m is not None:
        return 5.0 + 0.01 * fence.radius_m
    return 15.0


class FenceShape:
    """Containment, boundary band and nudging for one fence."""

    def __init__(self, fence: Fence) -> None:
        self.fence = fence
        self.margin_m = margin_m(fence)
        geometry = shape(fence.geometry)
        gtype = fence.geometry["type"]
        self._circle: tuple[float, float, float] | None = None
        self._line_m: LineString | None = None
        self._poly: Polygon | MultiPolygon | None = None
        self._poly_m: Polygon | MultiPolygon | None = None
        self._band: tuple[Any, Any] | None = None
        centre = geometry.centroid
        self.frame = LocalFrame(float(centre.x), float(centre.y))
        if gtype == "Point":
            assert fence.radius_m is not None
            self._circle = (float(geometry.x), float(geometry.y), fence.radius_m)
            reach = fence.radius_m
        elif gtype == "LineString":
            assert fence.buffer_m is not None
            x, y = self.frame.to_xy(*np.asarray(geometry.coords).T)
            self._line_m = LineString(np.column_stack([x, y]))
            reach = fence.buffer_m
        else:
            self._poly = geometry
            self._poly_m = shapely.transform(geometry, self._to_xy_coords)
            shapely.prepare(self._poly)
            reach = 0.0
        minx, miny, maxx, maxy = geometry.bounds
        pad = reach + 3 * self.margin_m
        pad_lon = pad / self.frame.m_per_deg_lon
        pad_lat = pad / 111_000.0
        self.bbox = (minx - pad_lon, miny - pad_lat, maxx + pad_lon, maxy + pad_lat)

    def _band_geometries(self) -> tuple[Any, Any]:
        """Lon/lat polygons `margin_m` outside and inside the boundary, prepared."""
        if self._band is None:
            if self._line_m is not None:
                assert self.fence.buffer_m is not None
                outer_m = self._line_m.buffer(self.fence.buffer_m + self.margin_m, quad_segs=32)
                inner_m = self._line_m.buffer(self.fence.buffer_m - self.margin_m, quad_segs=32)
            else:
                assert self._poly_m is not None
                outer_m = self._poly_m.buffer(self.margin_m, quad_segs=32)
                inner_m = self._poly_m.buffer(-self.margin_m, quad_segs=32)
            outer = shapely.transform(outer_m, self._to_lonlat_coords)
            inner = shapely.transform(inner_m, self._to_lonlat_coords)
            shapely.prepare(outer)
            shapely.prepare(inner)
            self._band = (outer, inner)
        return self._band

    def in_band(self, lon: FloatArray, lat: FloatArray) -> BoolArray:
        """Fixes within `margin_m` of the boundary, where engines may disagree on the side."""
        result = np.zeros(len(lon), dtype=np.bool_)
        near = np.nonzero(self._near(lon, lat))[0]
        if len(near) == 0:
            return result
        if self._circle is not None:
            result[near] = np.abs(self.signed_distance_m(lon[near], lat[near])) < self.margin_m
            return result
        outer, inner = self._band_geometries()
        result[near] = shapely.contains_xy(outer, lon[near], lat[near]) & ~shapely.contains_xy(
            inner, lon[near], lat[near]
        )
        return result

    def _to_lonlat_coords(self, coords: FloatArray) -> FloatArray:
        lon, lat = self.frame.to_lonlat(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    def _to_xy_coords(self, coords: FloatArray) -> FloatArray:
        x, y = self.frame.to_xy(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    def _near(self, lon: FloatArray, lat: FloatArray) -> BoolArray:
        minx, miny, maxx, maxy = self.bbox
        return np.asarray((lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy))

    def signed_distance_m(self, lon: FloatArray, lat: FloatArray) -> FloatArray:
        """Metres to the boundary, negative inside; +inf far outside the fence's box."""
        out = np.full(len(lon), np.inf)
        near = np.nonzero(self._near(lon, lat))[0]
        if len(near) == 0:
            return out
        if self._circle is not None:
            clon, clat, radius = self._circle
            out[near] = haversine_m(lon[near], lat[near], clon, clat) - radius
            return out
        x, y = self.frame.to_xy(lon[near], lat[near])
        points = shapely.points(x, y)
        if self._line_m is not None:
            assert self.fence.buffer_m is not None
            out[near] = shapely.distance(self._line_m, points) - self.fence.buffer_m
            return out
        assert self._poly_m is not None
        assert self._poly is not None
        dist = shapely.distance(self._poly_m.boundary, points)
        inside = shapely.contains_xy(self._poly, lon[near], lat[near])
        out[near] = np.where(inside, -dist, dist)
        return out

    def contains(self, lon: FloatArray, lat: FloatArray) -> BoolArray:
        result = np.zeros(len(lon), dtype=np.bool_)
        near = np.nonzero(self._near(lon, lat))[0]
        if len(near) == 0:
            return result
        if self._poly is not None:
            result[near] = shapely.contains_xy(self._poly, lon[near], lat[near])
            return result
        result[near] = self.signed_distance_m(lon[near], lat[near]) < 0.0
        return result

    def nudge(self, lon: float, lat: float, distance_m: float) -> tuple[float, float]:
        """Moves a point along the boundary normal to `distance_m` on its own side."""
        x, y = (float(v) for v in self.frame.to_xy(lon, lat))
        if self._circle is not None:
            clon, clat, radius = self._circle
            cx, cy = (float(v) for v in self.frame.to_xy(clon, clat))
            dx, dy = x - cx, y - cy
            norm = float(np.hypot(dx, dy)) or 1.0
            within = bool(haversine_m(lon, lat, clon, clat) < radius)
            target = radius - distance_m if within else radius + distance_m
            nx, ny = cx + dx / norm * target, cy + dy / norm * target
        else:
            point = Point(x, y)
            if self._line_m is not None:
                assert self.fence.buffer_m is not None
                base = self._line_m.interpolate(self._line_m.project(point))
                dx, dy = x - base.x, y - base.y
                norm = float(np.hypot(dx, dy)) or 1.0
                within = norm < self.fence.buffer_m
                target = self.fence.buffer_m + (-distance_m if within else distance_m)
                nx, ny = base.x + dx / norm * target, base.y + dy / norm * target
            else:
                assert self._poly_m is not None
                ring = self._poly_m.boundary
                base = ring.interpolate(ring.project(point))
                dx, dy = x - base.x, y - base.y
                norm = float(np.hypot(dx, dy))
                if norm == 0.0:
                    dx, dy, norm = 1.0, 0.0, 1.0
                within = bool(self._poly_m.contains(point))
                nx, ny = base.x + dx / norm * distance_m, base.y + dy / norm * distance_m
                if bool(self._poly_m.contains(Point(nx, ny))) != within:
                    nx, ny = base.x - dx / norm * distance_m, base.y - dy / norm * distance_m
        new_lon, new_lat = self.frame.to_lonlat(nx, ny)
        return float(new_lon), float(new_lat)


def circle(fence_id: str, name: str, lon: float, lat: float, radius_m: float) -> Fence:
    return Fence(
        fence_id,
        name,
        "hotspot",
        {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
        radius_m=round(radius_m, 1),
    )


def ring_lonlat(
    frame: LocalFrame, xy: list[tuple[float, float]], max_edge_m: float
) -> list[list[float]]:
    """A closed lon/lat ring from metric vertices, edges split to at most `max_edge_m`."""
    pts: list[tuple[float, float]] = []
    closed = [*xy, xy[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(closed):
        steps = max(1, int(np.ceil(np.hypot(x1 - x0, y1 - y0) / max_edge_m)))
        for k in range(steps):
            pts.append((x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps))
    pts.append(pts[0])
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    lon, lat = frame.to_lonlat(xs, ys)
    return [[round(float(a), 6), round(float(b), 6)] for a, b in zip(lon, lat, strict=True)]
