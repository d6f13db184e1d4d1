"""An immutable, versioned set of fences with its index, and batch membership.

Built once per change (a few seconds for 20,000 fences; a province-sized fence costs about its
outline, not its area) and swapped whole: a running pipeline keeps using the old set until the
new one is assigned, and nothing in a set ever mutates.

Membership of a batch: the grid (`geofence.grid`) lists the (row, fence) pairs a chunk of rows
at a time; vehicle restrictions and the exact tests of the pairs in boundary cells then run once
over the whole batch: polygons by GEOS's ray-crossing rules in numpy over each fine row's edges
(`geofence.pip`, GEOS itself for the rare point within rounding of an edge), circles by
haversine, corridors by distance in their projection.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from geofence.geodesy import (
    EARTH_RADIUS_M,
    degrees_around,
    haversine_m,
    local_projection,
    project,
    unproject,
)
from geofence.grid import Grid, build_grid
from geofence.model import Fence, FenceKind, Shape
from geofence.pip import EdgeRows, edge_rows
from geofence.pip import contains as edges_contain
from geofence.raster import CircleRaster, CorridorRaster, PolygonRaster, Rasterizer

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

KIND_CODES: dict[FenceKind, int] = {
    FenceKind.HOTSPOT: 0,
    FenceKind.ALLOWED_AREA: 1,
    FenceKind.ZONE: 2,
}
SHAPE_CODES: dict[Shape, int] = {Shape.POLYGON: 0, Shape.CIRCLE: 1, Shape.CORRIDOR: 2}
_OUTLINE_SEGMENTS = 64
# A batch is looked up this many rows at a time: each pass's arrays then stay in the core's
# cache between passes, instead of streaming 8 MB columns through memory a dozen times.
CHUNK_ROWS = 1 << 16
# Fewer polygon pairs than this in a batch go to GEOS directly: the numpy test's fixed cost
# (~40 us) is then more than GEOS's per pair (0.1-0.3 us).
PIP_MIN_PAIRS = 256
CORRIDOR_STEP_DEG = 0.005  # ~500 m: the chord's sag between steps stays below 0.1 mm
# (fence, vehicle) pairs up to this many are looked up in a table of flags (4 MB at most).
DENSE_KEYS_MAX = 1 << 22


@dataclass(frozen=True, slots=True)
class _Corridor:
    transformer: pyproj.Transformer
    line_m: shapely.Geometry  # the centre line in the local projection, prepared
    buffer_m: float


@dataclass(frozen=True, slots=True)
class _Index:
    """Everything derived from the fences alone; shared by sets that differ only in vehicles."""

    grid: Grid
    shape: npt.NDArray[np.uint8]
    polygon: npt.NDArray[np.object_]  # prepared geometries; None where not a polygon
    edges: EdgeRows  # polygons' edges per fine row of the grid: the exact test
    circle_lon: FloatArray
    circle_lat: FloatArray
    circle_radius_m: FloatArray
    corridors: dict[int, _Corridor]
    outlines: npt.NDArray[np.object_]  # lon/lat polygons (circles, corridors approximated)
    tree: shapely.STRtree


class FenceSet:
    """Fences (index = position in `fences`), their grid, and the vehicles the set is bound to.

    `contains` answers a whole batch: for each row, the fences of that row's vehicle containing
    the point. A polygon contains a point in its interior (not on its boundary, as shapely's
    `contains_xy`); a circle one within radius_m (haversine); a corridor one within buffer_m of
    its line (straight in lon/lat, densified), measured in the corridor's local azimuthal
    equidistant projection (`corridor_distance_m`).
    """

    __slots__ = (
        "_allowed_keys",
        "_allowed_table",
        "_by_id",
        "_index",
        "_restricted",
        "fences",
        "kinds",
        "vehicles",
        "version",
    )

    def __init__(
        self,
        fences: Iterable[Fence],
        version: int,
        vehicles: Sequence[str] = (),
        *,
        cell_deg: float | None = None,
        _index: _Index | None = None,
    ) -> None:
        self.fences: tuple[Fence, ...] = tuple(fences)
        self.version = version
        self.vehicles: tuple[str, ...] = tuple(vehicles)
        self._by_id = {fence.id: i for i, fence in enumerate(self.fences)}
        if len(self._by_id) != len(self.fences):
            raise ValueError("fence ids must be unique within a set")
        self.kinds = np.array([KIND_CODES[f.kind] for f in self.fences], dtype=np.uint8)
        self._index = _index if _index is not None else _build_index(self.fences, cell_deg)
        self._restricted, self._allowed_keys = _restrictions(self.fences, self.vehicles)
        self._allowed_table = _dense(
            self._allowed_keys, len(self.fences) * (len(self.vehicles) + 1)
        )

    def __len__(self) -> int:
        return len(self.fences)

    def __repr__(self) -> str:
        return f"FenceSet(version={self.version}, fences={len(self.fences)})"

    @property
    def grid(self) -> Grid:
        return self._index.grid

    @property
    def tree(self) -> shapely.STRtree:
        """STRtree over the fences' lon/lat outlines (circles and corridors as polygons)."""
        return self._index.tree

    def with_vehicles(self, vehicles: Sequence[str], version: int | None = None) -> FenceSet:
        """The same fences bound to another vehicle list; reuses the index (cheap)."""
        return FenceSet(
            self.fences,
            self.version if version is None else version,
            vehicles,
            _index=self._index,
        )

    def index_of(self, fence_id: str) -> int:
        return self._by_id[fence_id]

    def get(self, fence_id: str) -> int | None:
        return self._by_id.get(fence_id)

    def ids(self, fence_index: npt.ArrayLike) -> list[str]:
        return [self.fences[int(i)].id for i in np.asarray(fence_index).ravel()]

    def contains(
        self,
        lon: npt.ArrayLike,
        lat: npt.ArrayLike,
        vehicle: npt.ArrayLike,
    ) -> tuple[IntArray, npt.NDArray[np.int32]]:
        """(row, fence) pairs, sorted by row then fence, for every fence containing its point.

        `vehicle` is an int32 index into `vehicles` per row; -1 (or out of range) means an
        unknown vehicle, which only fences for all vehicles match. NaN coordinates match nothing.
        """
        lon_a = np.asarray(lon, dtype=np.float64)
        lat_a = np.asarray(lat, dtype=np.float64)
        vehicle_a = _vehicle_column(vehicle)
        if not (lon_a.shape == lat_a.shape == vehicle_a.shape) or lon_a.ndim != 1:
            raise ValueError("lon, lat and vehicle must be 1-d arrays of one length")
        # The grid's pairs a chunk at a time (see CHUNK_ROWS); vehicle restrictions and the exact
        # tests of the pairs in boundary cells once for the whole batch, where their fixed cost
        # is paid once.
        grid = self._index.grid
        parts = [
            grid.candidates(lon_a[start : start + CHUNK_ROWS], lat_a[start : start + CHUNK_ROWS])
            for start in range(0, len(lon_a), CHUNK_ROWS)
        ]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        for i, part in enumerate(parts[1:], start=1):
            np.add(part.row, i * CHUNK_ROWS, out=part.row)
        if len(parts) == 1:
            row, fence, exact = parts[0].row, parts[0].fence, parts[0].exact
        else:
            row = np.concatenate([p.row for p in parts])
            fence = np.concatenate([p.fence for p in parts])
            exact = np.concatenate([p.exact for p in parts])
        keep: npt.NDArray[np.bool_] | None = None
        if self._restricted.any():
            keep = self._allowed(row, fence, vehicle_a)
            exact &= keep
        check = np.flatnonzero(exact)
        if len(check):
            at = row[check]
            inside = self._exact(fence[check], lon_a[at], lat_a[at])
            if not inside.all():
                if keep is None:
                    keep = np.ones(len(row), dtype=bool)
                keep[check[~inside]] = False
        if keep is None:
            return row, fence
        kept = np.flatnonzero(keep)
        return row[kept], fence[kept]

    def crossings(
        self,
        lon0: npt.ArrayLike,
        lat0: npt.ArrayLike,
        lon1: npt.ArrayLike,
        lat1: npt.ArrayLike,
        vehicle: npt.ArrayLike,
    ) -> tuple[IntArray, npt.NDArray[np.int32]]:
        """(segment, fence) pairs where the straight segment between two fixes passes through a
        fence while neither fix is inside it: a car driving through a small fence between fixes.

        Polygons are tested exactly; circles and corridors through their 64-sided outlines.
        """
        lon0_a, lat0_a = np.asarray(lon0, np.float64), np.asarray(lat0, np.float64)
        lon1_a, lat1_a = np.asarray(lon1, np.float64), np.asarray(lat1, np.float64)
        vehicle_a = _vehicle_column(vehicle)
        coords = np.stack([np.column_stack([lon0_a, lat0_a]), np.column_stack([lon1_a, lat1_a])], 1)
        segments = shapely.linestrings(coords)
        seg, fence = self._index.tree.query(segments, predicate="intersects")
        seg = seg.astype(np.int64)
        fence = fence.astype(np.int32)
        if self._restricted.any():
            keep = self._allowed(seg, fence, vehicle_a)
            seg, fence = seg[keep], fence[keep]
        start_keys = _pair_keys(*self.contains(lon0_a, lat0_a, vehicle_a))
        end_keys = _pair_keys(*self.contains(lon1_a, lat1_a, vehicle_a))
        keys = _pair_keys(seg, fence)
        keep = ~np.isin(keys, start_keys) & ~np.isin(keys, end_keys)
        seg, fence = seg[keep], fence[keep]
        order = np.lexsort((fence, seg))
        return seg[order], fence[order]

    def _allowed(
        self, row: IntArray, fence: npt.NDArray[np.int32], vehicle: npt.NDArray[np.integer[Any]]
    ) -> npt.NDArray[np.bool_]:
        restricted = np.take(self._restricted, fence)
        allowed = ~restricted
        check = np.flatnonzero(restricted)
        if len(check):
            n_vehicles = len(self.vehicles)
            rows_vehicle = np.take(vehicle, np.take(row, check)).astype(np.int64, copy=False)
            # An unknown vehicle (-1 or out of range) becomes index V, which no key allows.
            if len(vehicle) and (int(vehicle.min()) < 0 or int(vehicle.max()) >= n_vehicles):
                rows_vehicle = rows_vehicle.copy()
                rows_vehicle[(rows_vehicle < 0) | (rows_vehicle >= n_vehicles)] = n_vehicles
            keys = np.take(fence, check).astype(np.int64) * (n_vehicles + 1)
            keys += rows_vehicle
            if self._allowed_table is not None:
                allowed[check] = self._allowed_table[keys]
                return allowed
            pos = np.searchsorted(self._allowed_keys, keys)
            pos = np.minimum(pos, max(len(self._allowed_keys) - 1, 0))
            hit = (
                self._allowed_keys[pos] == keys
                if len(self._allowed_keys)
                else np.zeros(len(keys), bool)
            )
            allowed[check] = hit
        return allowed

    def _exact(
        self, fence_index: npt.NDArray[np.int32], lon: FloatArray, lat: FloatArray
    ) -> npt.NDArray[np.bool_]:
        index = self._index
        fence = fence_index.astype(np.intp)  # gathers by an intp index skip a conversion each
        shape = index.shape[fence]
        result = np.zeros(len(fence), dtype=bool)
        is_polygon = shape == SHAPE_CODES[Shape.POLYGON]
        if is_polygon.any():
            at = np.flatnonzero(is_polygon)
            if len(at) < PIP_MIN_PAIRS:
                inside = shapely.contains_xy(index.polygon[fence[at]], lon[at], lat[at])
                undecided = np.zeros(len(at), dtype=bool)
            else:
                inside, undecided = edges_contain(index.edges, fence[at], lon[at], lat[at])
            if undecided.any():
                # Within rounding of an edge's line: GEOS's exact arithmetic answers.
                ask = at[undecided]
                inside[undecided] = shapely.contains_xy(
                    index.polygon[fence[ask]], lon[ask], lat[ask]
                )
            result[at] = inside
        is_circle = shape == SHAPE_CODES[Shape.CIRCLE]
        if is_circle.any():
            f = fence[is_circle]
            distance = haversine_m(
                index.circle_lon[f], index.circle_lat[f], lon[is_circle], lat[is_circle]
            )
            result[is_circle] = distance <= index.circle_radius_m[f]
        corridor_rows = np.flatnonzero(shape == SHAPE_CODES[Shape.CORRIDOR])
        if len(corridor_rows):
            for f in np.unique(fence[corridor_rows]):
                at = corridor_rows[fence[corridor_rows] == f]
                corridor = index.corridors[int(f)]
                x, y = project(corridor.transformer, lon[at], lat[at])
                result[at] = shapely.dwithin(
                    corridor.line_m, shapely.points(x, y), corridor.buffer_m
                )
        return result


def _vehicle_column(vehicle: npt.ArrayLike) -> npt.NDArray[np.integer[Any]]:
    """Integer vehicle indexes as given (no 1M-row copy): only restricted pairs read them."""
    column = np.asarray(vehicle)
    if not np.issubdtype(column.dtype, np.integer):
        column = column.astype(np.int64)
    return column


def _pair_keys(row: IntArray, fence: npt.NDArray[np.int32]) -> IntArray:
    return (row.astype(np.int64) << 32) | fence.astype(np.int64)


def _restrictions(
    fences: Sequence[Fence], vehicles: Sequence[str]
) -> tuple[npt.NDArray[np.bool_], IntArray]:
    """Which fences are restricted, and sorted keys fence * (V + 1) + vehicle they allow."""
    restricted = np.array([f.vehicles is not None for f in fences], dtype=bool)
    position = {vehicle: i for i, vehicle in enumerate(vehicles)}
    stride = len(vehicles) + 1
    keys = [
        i * stride + position[v]
        for i, fence in enumerate(fences)
        if fence.vehicles is not None
        for v in fence.vehicles
        if v in position
    ]
    return restricted, np.unique(np.array(keys, dtype=np.int64))


def _dense(keys: IntArray, size: int) -> npt.NDArray[np.bool_] | None:
    """The sorted `keys` as a table of `size` flags (a lookup is one gather instead of a
    binary search per pair); None when the key space is too large for one."""
    if size > DENSE_KEYS_MAX:
        return None
    table = np.zeros(size, np.bool_)
    table[keys] = True
    return table


def _build_index(fences: Sequence[Fence], cell_deg: float | None) -> _Index:
    n = len(fences)
    shape = np.array([SHAPE_CODES[f.shape] for f in fences], dtype=np.uint8)
    polygon = np.full(n, None, dtype=object)
    circle_lon = np.full(n, np.nan)
    circle_lat = np.full(n, np.nan)
    circle_radius_m = np.full(n, np.nan)
    corridors: dict[int, _Corridor] = {}
    bounds = np.zeros((n, 4), dtype=np.float64)
    rasterizers: list[Rasterizer] = []
    outlines = np.full(n, None, dtype=object)
    for i, fence in enumerate(fences):
        if fence.shape is Shape.POLYGON:
            geometry = fence.geometry
            shapely.prepare(geometry)
            polygon[i] = geometry
            outlines[i] = geometry
            bounds[i] = shapely.bounds(geometry)
            rasterizers.append(PolygonRaster(geometry))
        elif fence.shape is Shape.CIRCLE:
            assert fence.radius_m is not None
            lon, lat = fence.geometry.x, fence.geometry.y
            circle_lon[i], circle_lat[i], circle_radius_m[i] = lon, lat, fence.radius_m
            dlon, dlat = degrees_around(lat, fence.radius_m)
            bounds[i] = (lon - dlon, lat - dlat, lon + dlon, lat + dlat)
            outlines[i] = _circle_outline(lon, lat, fence.radius_m)
            rasterizers.append(CircleRaster(lon, lat, fence.radius_m))
        else:
            assert fence.buffer_m is not None
            corridor = _corridor(fence.geometry, fence.buffer_m)
            corridors[i] = corridor
            outline = _corridor_outline(corridor)
            outlines[i] = outline
            lon0, lat0, lon1, lat1 = shapely.bounds(fence.geometry)
            dlon, dlat = degrees_around(max(abs(lat0), abs(lat1)), fence.buffer_m * 1.05)
            bounds[i] = (lon0 - dlon, lat0 - dlat, lon1 + dlon, lat1 + dlat)
            rasterizers.append(
                CorridorRaster(corridor.line_m, corridor.transformer, fence.buffer_m)
            )
    grid = build_grid(bounds, rasterizers, cell_deg)
    polygon_edges = [
        (r.x1, r.y1, r.x2, r.y2) if isinstance(r, PolygonRaster) else None for r in rasterizers
    ]
    return _Index(
        grid=grid,
        shape=shape,
        polygon=polygon,
        edges=edge_rows(polygon_edges, grid.y0_deg, grid.cell_deg),
        circle_lon=circle_lon,
        circle_lat=circle_lat,
        circle_radius_m=circle_radius_m,
        corridors=corridors,
        outlines=outlines,
        tree=shapely.STRtree(outlines),
    )


def _corridor(line: shapely.Geometry, buffer_m: float) -> _Corridor:
    centre = shapely.centroid(line)
    transformer = local_projection(round(centre.x, 6), round(centre.y, 6))
    # Densified first, so the corridor follows the line drawn straight in lon/lat (as GeoJSON
    # means it), not the chord between its projected vertices.
    xy = shapely.get_coordinates(shapely.segmentize(line, CORRIDOR_STEP_DEG))
    x, y = project(transformer, xy[:, 0], xy[:, 1])
    line_m = shapely.linestrings(np.column_stack([x, y]))
    shapely.prepare(line_m)
    return _Corridor(transformer=transformer, line_m=line_m, buffer_m=buffer_m)


def corridor_distance_m(fence: Fence, lon: npt.ArrayLike, lat: npt.ArrayLike) -> FloatArray:
    """Distance in metres from points to a corridor's line, as membership measures it."""
    assert fence.buffer_m is not None
    corridor = _corridor(fence.geometry, fence.buffer_m)
    x, y = project(corridor.transformer, lon, lat)
    return np.asarray(shapely.distance(corridor.line_m, shapely.points(x, y)), dtype=np.float64)


def _corridor_outline(corridor: _Corridor) -> shapely.Geometry:
    # Slightly wider than the corridor so a segment grazing it is still found by the tree.
    shell = shapely.buffer(corridor.line_m, corridor.buffer_m * 1.01, quad_segs=16)
    xy = shapely.get_coordinates(shell)
    lon, lat = unproject(corridor.transformer, xy[:, 0], xy[:, 1])
    return shapely.polygons(np.column_stack([lon, lat]))


def _circle_outline(lon: float, lat: float, radius_m: float) -> shapely.Geometry:
    """A circumscribed polygon: destination points on the sphere at radius / cos(pi / n)."""
    bearing = np.linspace(0.0, 2.0 * np.pi, _OUTLINE_SEGMENTS + 1)
    delta = radius_m / math.cos(math.pi / _OUTLINE_SEGMENTS) / EARTH_RADIUS_M
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    phi2 = np.arcsin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * np.cos(bearing)
    )
    lmb2 = lmb1 + np.arctan2(
        np.sin(bearing) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * np.sin(phi2),
    )
    return shapely.polygons(np.column_stack([np.degrees(lmb2), np.degrees(phi2)]))
