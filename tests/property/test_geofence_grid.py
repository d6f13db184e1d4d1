"""The batch grid lookup equals a point-by-point walk of the same tables.

The lookup's shortcuts (one occupancy byte per coarse cell, a range check by two reductions,
no CSR expansion when every hit cell lists one fence, masks read as int64) must change nothing:
the reference here reads the tables one point at a time, the plain way. Points include exact
cell lines, NaN, infinities and points off the grid.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import geofence.grid
from geofence import Fence, FenceKind, FenceSet
from geofence.grid import Grid
from geofence.raster import BLOCK

Pair = tuple[int, int, bool, bool]


def reference(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> list[Pair]:
    """(row, fence, inside, exact) per point and listed fence, in row then table order."""
    pairs: list[Pair] = []
    inv_cell = 1.0 / grid.cell_deg
    for r, (x_deg, y_deg) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        x = (x_deg - grid.x0_deg) * inv_cell
        y = (y_deg - grid.y0_deg) * inv_cell
        if not (0.0 <= x < grid.fine_cols and 0.0 <= y < grid.fine_rows):
            continue
        col, row = math.floor(x), math.floor(y)
        cell = (row // BLOCK) * grid.coarse_cols + col // BLOCK
        bit = (row % BLOCK) * BLOCK + col % BLOCK
        for entry in range(int(grid.cell_start[cell]), int(grid.cell_start[cell + 1])):
            touched = (int(grid.entry_touched[entry]) >> bit) & 1
            boundary = (int(grid.entry_boundary[entry]) >> bit) & 1
            if touched:
                pairs.append((r, int(grid.entry_fence[entry]), not boundary, bool(boundary)))
    return pairs


@st.composite
def cases(draw: st.DrawFn) -> tuple[FenceSet, np.ndarray, np.ndarray]:
    fences: list[Fence] = []
    for i in range(draw(st.integers(1, 6))):
        cx, cy = draw(st.floats(116.0, 116.6)), draw(st.floats(39.6, 40.2))
        if draw(st.booleans()):
            radius = draw(st.floats(0.01, 0.2))
            n = draw(st.integers(3, 12))
            angle = np.sort(np.asarray(draw(st.lists(st.floats(0, 6.28), min_size=n, max_size=n))))
            ring = np.column_stack([cx + radius * np.cos(angle), cy + radius * np.sin(angle)])
            polygon = shapely.make_valid(shapely.Polygon(ring))
            if polygon.geom_type not in ("Polygon", "MultiPolygon") or polygon.is_empty:
                continue
            fences.append(Fence(f"p{i}", FenceKind.ZONE, polygon))
        else:
            radius_m = draw(st.floats(300.0, 20_000.0))
            fences.append(
                Fence(f"c{i}", FenceKind.HOTSPOT, shapely.Point(cx, cy), radius_m=radius_m)
            )
    if not fences:
        fences.append(Fence("box", FenceKind.ZONE, shapely.box(116.1, 39.7, 116.3, 39.9)))
    cell_deg = draw(st.sampled_from([None, 1.0 / 128, 0.001, 0.0037]))
    fence_set = FenceSet(fences, version=1, cell_deg=cell_deg)
    grid = fence_set.grid
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    lon = rng.uniform(115.5, 117.1, n)
    lat = rng.uniform(39.1, 40.7, n)
    # Exact cell lines and corners, up to the grid's far edges (just off the grid).
    k = rng.integers(0, grid.fine_cols + 1, n // 3)
    j = rng.integers(0, grid.fine_rows + 1, n // 3)
    lon[: len(k)] = grid.x0_deg + k * grid.cell_deg
    lat[: len(j) : 2] = grid.y0_deg + j[::2] * grid.cell_deg
    if n and draw(st.booleans()):
        lon[-1] = grid.x0_deg + grid.fine_cols * grid.cell_deg
        lat[-1] = grid.y0_deg + grid.fine_rows * grid.cell_deg
    specials = draw(
        st.lists(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 400.0, -400.0]), max_size=6)
    )
    for value in specials:
        if n:
            lon[rng.integers(0, n)] = value
            lat[rng.integers(0, n)] = value
    return fence_set, lon, lat


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_batch_lookup_equals_a_point_by_point_walk_of_the_tables(
    case: tuple[FenceSet, np.ndarray, np.ndarray],
) -> None:
    fence_set, lon, lat = case
    found = fence_set.grid.candidates(lon, lat)
    got = list(
        zip(
            found.row.tolist(),
            found.fence.tolist(),
            found.inside.tolist(),
            found.exact.tolist(),
            strict=True,
        )
    )
    assert got == reference(fence_set.grid, lon, lat)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_fences_refined_block_by_block_get_the_same_tables_as_fences_rasterized_whole(
    case: tuple[FenceSet, np.ndarray, np.ndarray],
) -> None:
    fence_set = case[0]
    cell_deg = fence_set.grid.cell_deg
    with mock.patch.object(geofence.grid, "DENSE_CELLS", 1 << 62):
        whole = FenceSet(fence_set.fences, version=1, cell_deg=cell_deg).grid
    with mock.patch.object(geofence.grid, "DENSE_CELLS", 0):
        refined = FenceSet(fence_set.fences, version=1, cell_deg=cell_deg).grid
    assert (whole.x0_deg, whole.y0_deg, whole.fine_cols) == (
        refined.x0_deg,
        refined.y0_deg,
        refined.fine_cols,
    )
    for table in ("cell_start", "entry_fence", "entry_touched", "entry_boundary"):
        assert np.array_equal(getattr(whole, table), getattr(refined, table)), table
