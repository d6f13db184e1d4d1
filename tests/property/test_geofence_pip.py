"""The numpy point-in-polygon test gives GEOS's answer wherever it decides.

Polygons: stars with holes, two-part multipolygons, and lattice polygons (level and vertical
edges, vertices on grid lines); points on vertices, on edges (midpoints, thirds, random
fractions), on level edges, on an edge's line beyond its ends, level with a vertex (the ray
runs through it), on the grid's row lines, and anywhere around. The oracle is
`shapely.contains_xy` on the prepared polygon, the exact test the engine replaces: a point on
the boundary is not contained.
"""

from __future__ import annotations

import itertools
import math
from unittest import mock

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geofence.fenceset
from geofence import Fence, FenceKind, FenceSet
from geofence.pip import contains, edge_rows
from geofence.raster import PolygonRaster


def star(rng: np.random.Generator, cx: float, cy: float, radius: float, n: int) -> np.ndarray:
    angle = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * rng.uniform(0.4, 1.0, n)
    return np.column_stack([cx + r * np.cos(angle), cy + r * np.sin(angle)])


@st.composite
def polygons(draw: st.DrawFn) -> tuple[shapely.Geometry, float]:
    """A valid polygon or multipolygon, and a fine cell size to list its edges by."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    cell_deg = draw(st.sampled_from([1.0 / 64, 1.0 / 512, 0.001, 0.0037]))
    if draw(st.booleans()):
        cx, cy = draw(st.floats(100.0, 120.0)), draw(st.floats(20.0, 40.0))
        radius = draw(st.floats(0.002, 0.3))
        n = draw(st.integers(3, 30))
        polygon = shapely.Polygon(star(rng, cx, cy, radius, n))
        if draw(st.booleans()):
            hole = star(rng, cx, cy, radius * 0.3, draw(st.integers(3, 8)))
            polygon = shapely.Polygon(polygon.exterior.coords, holes=[hole])
        if draw(st.booleans()):
            other = shapely.Polygon(star(rng, cx + radius * 2.5, cy, radius, n))
            polygon = shapely.MultiPolygon([polygon, other])
    else:
        # Vertices on cell corners: level and vertical edges, rays through vertices.
        x0, y0 = 116.0, 39.5
        corners = [(draw(st.integers(0, 60)), draw(st.integers(0, 60)))]
        for di, dj in draw(
            st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)), min_size=2, max_size=9)
        ):
            corners.append((corners[-1][0] + di, corners[-1][1] + dj))
        if len(set(corners)) < 3:
            corners = [(0, 0), (10, 0), (10, 10), (0, 10)]
        polygon = shapely.Polygon([(x0 + a * cell_deg, y0 + b * cell_deg) for a, b in corners])
    if not polygon.is_valid:
        polygon = shapely.make_valid(polygon)
    parts = [p for p in shapely.get_parts(polygon) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        parts = [shapely.box(116.0, 39.5, 116.1, 39.6)]
    geometry = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return geometry, cell_deg


def points_around(
    geometry: shapely.Geometry, cell_deg: float, y0: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    coords = shapely.get_coordinates(geometry)
    pts: list[tuple[float, float]] = [tuple(c) for c in coords]  # vertices
    for a, b in itertools.pairwise(coords):
        # On the edges (or within rounding of them), and on their lines beyond either end.
        for t in (0.5, 1.0 / 3.0, float(rng.uniform()), -1.0, 2.0):
            pts.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
        pts.append((min(a[0], b[0]) - cell_deg, a[1]))  # level with a vertex, left of it
        pts.append((max(a[0], b[0]) + cell_deg, b[1]))  # level with a vertex, right of it
    x_lo, y_lo, x_hi, y_hi = shapely.bounds(geometry)
    pad = (x_hi - x_lo) * 0.1 + cell_deg
    # Level with vertices anywhere across: rays through vertices and along level edges.
    for vy in rng.choice(coords[:, 1], 10):
        pts += [(float(vx), float(vy)) for vx in rng.uniform(x_lo - pad, x_hi + pad, 5)]
    n = 200
    xs = rng.uniform(x_lo - pad, x_hi + pad, n)
    ys = rng.uniform(y_lo - pad, y_hi + pad, n)
    ys[: n // 4] = y0 + np.round((ys[: n // 4] - y0) / cell_deg) * cell_deg  # on row lines
    pts += list(zip(xs.tolist(), ys.tolist(), strict=True))
    xy = np.array(pts, dtype=np.float64)
    return xy[:, 0], xy[:, 1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polygons(), st.integers(0, 2**31))
def test_decided_answers_equal_geos_and_generic_points_are_all_decided(
    case: tuple[shapely.Geometry, float], seed: int
) -> None:
    geometry, cell_deg = case
    shapely.prepare(geometry)
    y0 = math.floor(shapely.bounds(geometry)[1] / cell_deg - 3) * cell_deg
    raster = PolygonRaster(geometry)
    table = edge_rows([None, (raster.x1, raster.y1, raster.x2, raster.y2)], y0, cell_deg)
    rng = np.random.default_rng(seed)
    x, y = points_around(geometry, cell_deg, y0, rng)
    inside, undecided = contains(table, np.ones(len(x), np.int64), x, y)
    expected = shapely.contains_xy(geometry, x, y)
    decided = ~undecided
    assert np.array_equal(inside[decided], expected[decided])
    # A point within the polygon's rows and off every edge's line is always decided.
    _, y_lo, _, y_hi = shapely.bounds(geometry)
    generic = (
        (y > y_lo) & (y < y_hi) & (shapely.distance(geometry.boundary, shapely.points(x, y)) > 1e-9)
    )
    assert not undecided[generic].any()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polygons(), st.integers(0, 2**31))
def test_fence_set_membership_equals_geos_on_vertices_edges_and_row_lines(
    case: tuple[shapely.Geometry, float], seed: int
) -> None:
    geometry, cell_deg = case
    fence_set = FenceSet([Fence("p", FenceKind.ZONE, geometry)], version=1, cell_deg=cell_deg)
    rng = np.random.default_rng(seed)
    x, y = points_around(geometry, cell_deg, fence_set.grid.y0_deg, rng)
    expected = np.flatnonzero(shapely.contains_xy(geometry, x, y)).tolist()
    # Small batches go to GEOS directly; here every batch takes the numpy test too.
    for min_pairs in (0, geofence.fenceset.PIP_MIN_PAIRS):
        with mock.patch.object(geofence.fenceset, "PIP_MIN_PAIRS", min_pairs):
            rows, _ = fence_set.contains(x, y, np.zeros(len(x), np.int32))
        assert rows.tolist() == expected


def test_a_point_on_an_edge_within_rounding_is_left_to_geos() -> None:
    # (0, 0) -> (3, 1): a third of the way along is not representable, so the orientation's
    # terms nearly cancel and GEOS's filter cannot trust them.
    square = shapely.Polygon([(0.0, 0.0), (3.0, 1.0), (3.0, 4.0), (0.0, 4.0)])
    raster = PolygonRaster(square)
    table = edge_rows([(raster.x1, raster.y1, raster.x2, raster.y2)], -1.0, 1.0 / 64)
    x, y = np.array([1.0, 1.0, 2.0]), np.array([1.0 / 3.0, 2.0, 0.5])
    inside, undecided = contains(table, np.zeros(3, np.int64), x, y)
    assert undecided.tolist() == [True, False, False]
    assert inside[1:].tolist() == [True, False]
