"""Vectorized membership equals a slow scalar oracle on generated fences and points.

Oracle: `shapely.contains_xy` per point for polygons, haversine per point for circles, and per
point projection plus distance for corridors. Points include vertices, edge points, hole
boundaries, points at a circle's radius and at a corridor's width. Exactly at a circle's radius
or a corridor's width, floating point cannot decide better than ~1e-6 m: there either answer
agrees with the definition, so those few points are compared only beyond that tolerance.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from unittest import mock

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geofence.fenceset
from geofence import Fence, FenceKind, FenceSet
from geofence.fenceset import corridor_distance_m
from geofence.geodesy import EARTH_RADIUS_M, haversine_scalar_m

BOUNDARY_TOLERANCE_M = 1e-6


def star(cx: float, cy: float, radius: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    angle = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * rng.uniform(0.4, 1.0, n)
    return np.column_stack([cx + r * np.cos(angle), cy + r * np.sin(angle)])


@st.composite
def polygon_fences(draw: st.DrawFn) -> shapely.Geometry:
    cx = draw(st.floats(115.0, 117.0))
    cy = draw(st.floats(30.0, 32.0))
    radius = draw(st.floats(0.001, 0.3))
    n = draw(st.integers(3, 25))
    seed = draw(st.integers(0, 2**31))
    shell = star(cx, cy, radius, n, seed)
    polygon = shapely.Polygon(shell)
    if draw(st.booleans()):  # a hole well inside the star's inner radius
        hole = star(cx, cy, radius * 0.3, draw(st.integers(3, 8)), seed + 1)
        polygon = shapely.Polygon(shell, holes=[hole])
    if draw(st.booleans()):  # a second, disjoint part
        dx = radius * 2.5
        polygon = shapely.MultiPolygon(
            [polygon, shapely.Polygon(star(cx + dx, cy, radius, n, seed + 2))]
        )
    return shapely.make_valid(polygon) if not polygon.is_valid else polygon


def destination(lon: float, lat: float, bearing: float, metres: float) -> tuple[float, float]:
    delta, theta = metres / EARTH_RADIUS_M, math.radians(bearing)
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lmb2 = lmb1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(lmb2), math.degrees(phi2)


@st.composite
def fence_sets(draw: st.DrawFn) -> tuple[list[Fence], list[tuple[float, float]]]:
    fences: list[Fence] = []
    points: list[tuple[float, float]] = []
    for i in range(draw(st.integers(1, 4))):
        geometry = draw(polygon_fences())
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        fences.append(Fence(f"p{i}", FenceKind.ZONE, geometry))
        coords = shapely.get_coordinates(geometry)
        points += [tuple(c) for c in coords[: draw(st.integers(0, len(coords)))]]  # vertices
        t = draw(st.floats(0.0, 1.0))
        points += [tuple(a + t * (b - a)) for a, b in itertools.pairwise(coords)]
    for i in range(draw(st.integers(0, 3))):
        lon, lat = draw(st.floats(115.0, 117.0)), draw(st.floats(30.0, 32.0))
        radius_m = draw(st.floats(1.0, 20_000.0))
        fences.append(Fence(f"c{i}", FenceKind.HOTSPOT, shapely.Point(lon, lat), radius_m=radius_m))
        for bearing in draw(st.lists(st.floats(0.0, 360.0), max_size=6)):
            for factor in (0.999, 1.0, 1.001):
                points.append(destination(lon, lat, bearing, radius_m * factor))
    for i in range(draw(st.integers(0, 2))):
        lon, lat = draw(st.floats(115.0, 117.0)), draw(st.floats(30.0, 32.0))
        dx, dy = draw(st.floats(-0.5, 0.5)), draw(st.floats(-0.5, 0.5))
        if abs(dx) + abs(dy) < 1e-3:
            continue
        line = shapely.LineString(
            [(lon, lat), (lon + dx, lat + dy), (lon + dx, lat + 2 * dy + 0.01)]
        )
        buffer_m = draw(st.floats(1.0, 5_000.0))
        fences.append(Fence(f"r{i}", FenceKind.ZONE, line, buffer_m=buffer_m))
        for t in draw(st.lists(st.floats(0.0, 1.0), max_size=4)):
            px, py = lon + t * dx, lat + t * dy
            for bearing in (0.0, 90.0, 180.0, 270.0):
                points.append(destination(px, py, bearing, buffer_m))
    seeds = draw(st.lists(st.tuples(st.floats(114.5, 118.0), st.floats(29.5, 33.0)), max_size=30))
    points += seeds
    return fences, points


def oracle(
    fences: list[Fence], lon: np.ndarray, lat: np.ndarray
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(expected pairs, pairs too close to a metric boundary to judge)."""
    expected: set[tuple[int, int]] = set()
    unsure: set[tuple[int, int]] = set()
    for f, fence in enumerate(fences):
        if fence.radius_m is not None:
            centre = fence.geometry
            for r in range(len(lon)):
                d = haversine_scalar_m(centre.x, centre.y, float(lon[r]), float(lat[r]))
                if abs(d - fence.radius_m) <= BOUNDARY_TOLERANCE_M:
                    unsure.add((r, f))
                elif d <= fence.radius_m:
                    expected.add((r, f))
        elif fence.buffer_m is not None:
            for r in range(len(lon)):
                d = float(corridor_distance_m(fence, lon[r : r + 1], lat[r : r + 1])[0])
                if abs(d - fence.buffer_m) <= BOUNDARY_TOLERANCE_M:
                    unsure.add((r, f))
                elif d <= fence.buffer_m:
                    expected.add((r, f))
        else:
            for r in range(len(lon)):
                if shapely.contains_xy(fence.geometry, lon[r], lat[r]):
                    expected.add((r, f))
    return expected, unsure


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fence_sets())
def test_batch_membership_equals_the_per_point_oracle(
    case: tuple[list[Fence], list[tuple[float, float]]],
) -> None:
    fences, points = case
    if not fences or not points:
        return
    lon = np.array([p[0] for p in points], dtype=np.float64)
    lat = np.array([p[1] for p in points], dtype=np.float64)
    fence_set = FenceSet(fences, version=1)
    rows, found = fence_set.contains(lon, lat, np.zeros(len(lon), np.int32))
    got = set(zip(rows.tolist(), found.tolist(), strict=True))
    expected, unsure = oracle(fences, lon, lat)
    assert got - unsure == expected
    assert np.all(np.diff(rows) >= 0)


LATTICE_CELLS = [1.0 / 64, 1.0 / 256, 0.001, 0.0037]


@st.composite
def lattice_cases(
    draw: st.DrawFn,
) -> tuple[list[Fence], float, list[tuple[float, float]]]:
    """Polygons whose vertices sit on grid cell corners, and points on their vertices, on their
    edges and on the grid's cell lines: where the raster's conservative margin and the exact
    test meet. With binary cell sizes every such coordinate is exact."""
    cell_deg = draw(st.sampled_from(LATTICE_CELLS))
    # The grid's origin is a multiple of its coarse cell (8 fine cells): so is this base.
    lon0 = math.floor(116.0 / (8 * cell_deg)) * 8 * cell_deg
    lat0 = math.floor(39.5 / (8 * cell_deg)) * 8 * cell_deg
    fences: list[Fence] = []
    points: list[tuple[float, float]] = []
    for i in range(draw(st.integers(1, 3))):
        i0, j0 = draw(st.integers(0, 200)), draw(st.integers(0, 200))
        steps = draw(
            st.lists(st.tuples(st.integers(-40, 40), st.integers(-40, 40)), min_size=2, max_size=10)
        )
        corners = [(i0, j0)]
        for di, dj in steps:
            corners.append((corners[-1][0] + di, corners[-1][1] + dj))
        ring = [(lon0 + a * cell_deg, lat0 + b * cell_deg) for a, b in corners]
        polygon = shapely.make_valid(shapely.Polygon(ring)) if len(set(ring)) >= 3 else None
        if polygon is None or polygon.is_empty:
            continue
        parts = [p for p in shapely.get_parts(polygon) if p.geom_type == "Polygon"]
        if not parts:
            continue
        geometry = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
        fences.append(Fence(f"g{i}", FenceKind.ZONE, geometry))
        coords = shapely.get_coordinates(geometry)
        points += [tuple(c) for c in coords]  # vertices
        points += [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in itertools.pairwise(coords)]
        t = draw(st.sampled_from([0.25, 0.5, 1.0 / 3.0]))
        points += [
            (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
            for a, b in itertools.pairwise(coords)
        ]
    for a, b in draw(st.lists(st.tuples(st.integers(-5, 250), st.integers(-5, 250)), max_size=40)):
        points.append((lon0 + a * cell_deg, lat0 + b * cell_deg))  # cell corners
        points.append((lon0 + (a + 0.5) * cell_deg, lat0 + b * cell_deg))  # on a row line
        points.append((lon0 + a * cell_deg, lat0 + (b + 0.5) * cell_deg))  # on a column line
    return fences, cell_deg, points


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lattice_cases())
def test_points_on_vertices_edges_and_cell_lines_of_lattice_fences_equal_the_oracle(
    case: tuple[list[Fence], float, list[tuple[float, float]]],
) -> None:
    fences, cell_deg, points = case
    if not fences or not points:
        return
    lon = np.array([p[0] for p in points], dtype=np.float64)
    lat = np.array([p[1] for p in points], dtype=np.float64)
    fence_set = FenceSet(fences, version=1, cell_deg=cell_deg)
    rows, found = fence_set.contains(lon, lat, np.zeros(len(lon), np.int32))
    expected, _ = oracle(fences, lon, lat)
    assert set(zip(rows.tolist(), found.tolist(), strict=True)) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fence_sets(), st.integers(1, 40), st.integers(0, 2**31))
def test_a_batch_looked_up_chunk_by_chunk_and_tested_in_numpy_gives_the_pairs_of_one_lookup(
    case: tuple[list[Fence], list[tuple[float, float]]], chunk_rows: int, seed: int
) -> None:
    fences, points = case
    if not fences or not points:
        return
    rng = np.random.default_rng(seed)
    vehicles = ["V0", "V1", "V2"]
    # Some fences apply to some vehicles only; rows carry known and unknown vehicles.
    fences = [
        dataclasses.replace(f, vehicles=frozenset(rng.choice(vehicles, 2).tolist()))
        if rng.random() < 0.5
        else f
        for f in fences
    ]
    lon = np.array([p[0] for p in points], dtype=np.float64)
    lat = np.array([p[1] for p in points], dtype=np.float64)
    vehicle = rng.integers(-1, len(vehicles) + 1, len(lon)).astype(np.int32)
    fence_set = FenceSet(fences, version=1, vehicles=vehicles)
    rows, found = fence_set.contains(lon, lat, vehicle)
    with (
        mock.patch.object(geofence.fenceset, "CHUNK_ROWS", chunk_rows),
        mock.patch.object(geofence.fenceset, "PIP_MIN_PAIRS", 0),
    ):
        chunked_rows, chunked_found = fence_set.contains(lon, lat, vehicle)
    assert chunked_rows.tolist() == rows.tolist()
    assert chunked_found.tolist() == found.tolist()
    expected, unsure = oracle(fences, lon, lat)
    allowed = {
        (r, f)
        for r, f in expected
        if fences[f].vehicles is None
        or (0 <= vehicle[r] < len(vehicles) and vehicles[vehicle[r]] in fences[f].vehicles)
    }
    assert set(zip(rows.tolist(), found.tolist(), strict=True)) - unsure == allowed
