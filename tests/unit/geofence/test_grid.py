"""Grid lookup: occupancy skip, off-grid and NaN rows, one or many fences per cell, every bit."""

from __future__ import annotations

import numpy as np
import shapely

from geofence import Fence, FenceKind, FenceSet
from geofence.raster import BLOCK

CELL_DEG = 1.0 / 64  # exact in binary: cell lines fall on representable coordinates


def cell_centres(fence_set: FenceSet) -> tuple[np.ndarray, np.ndarray]:
    """The centre of every fine cell of the grid, row by row."""
    grid = fence_set.grid
    cols = np.arange(grid.fine_cols)
    rows = np.arange(grid.fine_rows)
    lon = grid.x0_deg + (cols + 0.5) * grid.cell_deg
    lat = grid.y0_deg + (rows + 0.5) * grid.cell_deg
    lon_2d, lat_2d = np.meshgrid(lon, lat)
    return lon_2d.ravel(), lat_2d.ravel()


def test_every_fine_cell_of_every_block_including_bit_63_is_decided_as_the_fence_says() -> None:
    # A big square covers whole 8x8 blocks (all 64 bits inside); a triangle's slanted edge
    # crosses blocks (boundary bits anywhere, bit 63 included).
    square = Fence("square", FenceKind.ZONE, shapely.box(0.1, 0.1, 0.9, 0.9))
    triangle = Fence("tri", FenceKind.ZONE, shapely.Polygon([(1.0, 0.0), (2.0, 0.0), (1.0, 1.0)]))
    fence_set = FenceSet([square, triangle], version=1, cell_deg=CELL_DEG)
    lon, lat = cell_centres(fence_set)
    rows, fences = fence_set.contains(lon, lat, np.full(len(lon), -1, np.int32))
    for index, fence in enumerate((square, triangle)):
        expected = np.flatnonzero(shapely.contains_xy(fence.geometry, lon, lat))
        assert np.array_equal(rows[fences == index], expected)
    found = fence_set.grid.candidates(lon, lat)
    grid = fence_set.grid
    col = np.floor((lon[found.row] - grid.x0_deg) / grid.cell_deg).astype(np.int64)
    row = np.floor((lat[found.row] - grid.y0_deg) / grid.cell_deg).astype(np.int64)
    bit = (row % BLOCK) * BLOCK + col % BLOCK
    assert set(bit[found.inside & (found.fence == 0)].tolist()) == set(range(64))
    assert 63 in set(bit[found.exact & (found.fence == 1)].tolist())


def test_rows_off_the_grid_or_nan_give_no_pairs_and_the_others_keep_their_row_numbers() -> None:
    fence_set = FenceSet(
        [Fence("a", FenceKind.ZONE, shapely.box(0.0, 0.0, 1.0, 1.0))], version=1, cell_deg=CELL_DEG
    )
    lon = np.array([np.nan, 0.5, -400.0, 0.25, 0.5, np.inf, 0.75, 1e308, 0.5])
    lat = np.array([0.5, np.nan, 0.5, 0.25, 1e9, 0.5, 0.75, 0.5, -1e308])
    found = fence_set.grid.candidates(lon, lat)
    assert found.row.tolist() == [3, 6]
    assert found.inside.tolist() == [True, True]


def test_a_batch_wholly_in_empty_cells_or_empty_gives_no_pairs() -> None:
    fences = [
        Fence("a", FenceKind.ZONE, shapely.box(0.0, 0.0, 1.0, 1.0)),
        Fence("b", FenceKind.ZONE, shapely.box(3.0, 3.0, 3.5, 3.5)),
    ]
    grid = FenceSet(fences, version=1, cell_deg=CELL_DEG).grid
    # Inside the grid, in coarse cells no fence touches.
    lon = np.array([2.0, 0.5, 3.2, 2.0])
    lat = np.array([2.0, 3.2, 0.5, 0.5])
    coarse_deg = CELL_DEG * BLOCK
    cell = ((lat - grid.y0_deg) // coarse_deg) * grid.coarse_cols + (
        lon - grid.x0_deg
    ) // coarse_deg
    assert not grid.occupied[cell.astype(np.int64)].any()
    assert len(grid.candidates(lon, lat).row) == 0
    empty = grid.candidates(np.zeros(0), np.zeros(0))
    assert len(empty.row) == len(empty.fence) == 0


def test_cells_listing_one_fence_and_cells_listing_several_give_every_pair_in_fence_order() -> None:
    fences = [
        Fence("big", FenceKind.ZONE, shapely.box(0.0, 0.0, 2.0, 2.0)),
        Fence("small", FenceKind.ZONE, shapely.box(1.5, 1.5, 1.9, 1.9)),
        Fence("far", FenceKind.HOTSPOT, shapely.Point(5.0, 5.0), radius_m=5_000.0),
    ]
    fence_set = FenceSet(fences, version=1, cell_deg=CELL_DEG)
    lon = np.array([0.5, 1.7, 5.0, 1.7, 3.0])
    lat = np.array([0.5, 1.7, 5.0, 1.95, 3.0])
    rows, found = fence_set.contains(lon, lat, np.zeros(5, np.int32))
    assert list(zip(rows.tolist(), found.tolist(), strict=True)) == [
        (0, 0),
        (1, 0),
        (1, 1),
        (2, 2),
        (3, 0),
    ]
    # Only single-fence cells in a batch: the lookup skips the CSR expansion.
    single_rows, single_found = fence_set.contains(lon[[0, 2]], lat[[0, 2]], np.zeros(2, np.int32))
    assert single_rows.tolist() == [0, 1]
    assert single_found.tolist() == [0, 2]


def test_a_point_on_the_far_edges_of_the_grid_is_off_it_even_when_all_others_are_on_it() -> None:
    fence_set = FenceSet(
        [Fence("a", FenceKind.ZONE, shapely.box(0.0, 0.0, 1.0, 1.0))], version=1, cell_deg=CELL_DEG
    )
    grid = fence_set.grid
    far_lon = grid.x0_deg + grid.fine_cols * grid.cell_deg
    far_lat = grid.y0_deg + grid.fine_rows * grid.cell_deg
    lon = np.array([0.5, far_lon, grid.x0_deg])
    lat = np.array([0.5, far_lat, grid.y0_deg])
    found = grid.candidates(lon, lat)
    assert found.row.tolist() == [0]
