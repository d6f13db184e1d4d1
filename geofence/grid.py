"""A two-level grid over all fences: per coarse cell, the fences that touch it, with 8x8 masks.

Each coarse cell lists (fence, touched mask, boundary mask): bit k of a mask says fine cell k of
the 8x8 block is wholly inside the fence or crossed by its boundary (touched), or crossed by its
boundary. A point is then decided by two bit tests, and only points in boundary fine cells need
an exact predicate. The lists are one CSR table, so a batch lookup is a handful of numpy passes
with no per-point Python.

The lookup is bound by numpy passes over the whole batch, not by the exact tests (on the
benchmark's fleet about 3 % of the points land in a boundary cell): so the batch-wide part is
kept to a few passes, and a one-bit occupancy table per coarse cell drops the points in empty
cells (three quarters of a fleet spread over a region) before the CSR work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geofence.raster import BLOCK, Bool2D, Rasterizer, Window

MAX_COARSE_CELLS = 4_000_000  # the CSR start table: 32 MB at most
# A few fences spread over a province need no multi-million-cell table: its build and every
# lookup pass over it cost more than the exact tests a coarser grid sends to GEOS.
COARSE_CELLS_PER_FENCE = 256
MIN_COARSE_CELLS = 1 << 16
MAX_RASTER_CELLS = 300_000_000  # fine cells classified at build time, over all fences
STRIP_ROWS = 512  # a tall fence is rasterized in strips of this many fine rows
DENSE_CELLS = 1 << 16  # above this many fine cells, a fence is classified block by block first
CELLS_PER_EXTENT = 24  # a typical fence spans about this many fine cells
MIN_CELL_DEG = 1e-5  # ~1 m
MAX_CELL_DEG = 0.5


@dataclass(frozen=True, slots=True)
class Candidates:
    """(row, fence) pairs from the grid; `exact` pairs still need the fence's own predicate."""

    row: npt.NDArray[np.int64]
    fence: npt.NDArray[np.int32]
    inside: npt.NDArray[np.bool_]
    exact: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Grid:
    x0_deg: float
    y0_deg: float
    cell_deg: float
    fine_cols: int
    fine_rows: int
    cell_start: npt.NDArray[np.int64]  # CSR over coarse cells, row-major
    occupied_bits: npt.NDArray[np.uint8]  # bit c % 8 of byte c // 8: does a fence touch cell c
    entry_fence: npt.NDArray[np.int32]
    entry_touched: npt.NDArray[np.uint64]  # fine cells wholly inside or on the boundary
    entry_boundary: npt.NDArray[np.uint64]

    @property
    def coarse_cols(self) -> int:
        return self.fine_cols // BLOCK

    @property
    def occupied(self) -> npt.NDArray[np.bool_]:
        """Per coarse cell: does any fence touch it."""
        n = len(self.cell_start) - 1
        bits = np.unpackbits(self.occupied_bits, count=n, bitorder="little")
        return bits.view(np.bool_)

    @property
    def eps_deg(self) -> float:
        return _eps(self.cell_deg)

    def candidates(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> Candidates:
        """Grid pairs for a batch: a few passes over the points, then work on the hits only.

        Most points of a fleet lie in coarse cells no fence touches; the occupancy table (one
        bit per coarse cell) drops them before any CSR gather or pair expansion.
        """
        inv_cell = 1.0 / self.cell_deg  # within 1e-12 cells of the division: far below eps
        # Coarse cells straight from the coordinates: scaling by 1/8 is exact in binary
        # floating point, so floor(x / 8) here is floor(x) >> 3 of the fine position x.
        inv_coarse = inv_cell * (1.0 / BLOCK)
        with np.errstate(over="ignore"):  # absurd coordinates become inf, off the grid
            x = lon - self.x0_deg
            x *= inv_coarse
            y = lat - self.y0_deg
            y *= inv_coarse
        coarse_cols, coarse_rows = self.coarse_cols, self.fine_rows // BLOCK
        rows: npt.NDArray[np.intp] | None = None
        if not (_all_within(x, coarse_cols) and _all_within(y, coarse_rows)):
            in_grid = (x >= 0.0) & (x < coarse_cols) & (y >= 0.0) & (y < coarse_rows)
            rows = np.flatnonzero(in_grid)  # NaN coordinates fail every comparison
            x, y = x[rows], y[rows]
        # Truncation is floor here: every value is in [0, cells). int32: at most
        # MAX_COARSE_CELLS coarse cells, and half the memory traffic of intp.
        cell = y.astype(np.int32)
        cell *= coarse_cols
        cell += x.astype(np.int32)
        # Occupancy as bits: 1/8 of a byte table, so it stays in cache while the batch streams.
        # np.take: numpy's fancy indexing with an int32 index is twice as slow.
        occupied = np.take(self.occupied_bits, cell >> 3)
        shift = cell.astype(np.uint8)
        shift &= 7
        occupied >>= shift
        occupied &= 1
        hit = np.flatnonzero(occupied.view(np.bool_))
        cell = cell[hit].astype(np.intp)
        start = self.cell_start[cell]
        count = self.cell_start[cell + 1] - start
        point = hit if rows is None else rows[hit]
        # The fine cell within the block, for the hits only, by the arithmetic of the full grid.
        with np.errstate(over="ignore"):
            fx = lon[point] - self.x0_deg
            fx *= inv_cell
            fy = lat[point] - self.y0_deg
            fy *= inv_cell
        bit = ((fy.astype(np.intp) & 7) << 3) | (fx.astype(np.intp) & 7)
        if len(count) and int(count.max()) == 1:
            entry = start
        else:
            entry = _expand(start, count)
            bit = np.repeat(bit, count)
            point = np.repeat(point, count)
        # Masks read as int64: the arithmetic shift keeps bit 63 testable with `& 1`.
        touched = self.entry_touched.view(np.int64)[entry] >> bit
        keep = np.flatnonzero(touched & 1)
        entry = entry[keep]
        exact = ((self.entry_boundary.view(np.int64)[entry] >> bit[keep]) & 1).astype(bool)
        return Candidates(
            row=point[keep].astype(np.int64, copy=False),
            fence=self.entry_fence[entry],
            inside=~exact,
            exact=exact,
        )


def _all_within(value: npt.NDArray[np.float64], limit: int) -> bool:
    """Every value in [0, limit): two reductions instead of four comparisons; NaN fails."""
    if len(value) == 0:
        return True
    return bool(value.min() >= 0.0) and bool(value.max() < limit)


def _expand(start: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """start[0], start[0]+1, ..., start[0]+count[0]-1, start[1], ...: the CSR entries."""
    total = int(count.sum())
    offsets = np.cumsum(count) - count
    entry: npt.NDArray[np.int64] = np.arange(total, dtype=np.int64) + np.repeat(
        start - offsets, count
    )
    return entry


def _eps(cell_deg: float) -> float:
    # Far above the rounding of (lon - x0) / cell (~1e-13 cells), far below a cell.
    return cell_deg * 1e-6


def choose_cell_deg(bounds: npt.NDArray[np.float64]) -> float:
    """A fine cell about 1/24 of the median fence extent, bounded by the table sizes."""
    if len(bounds) == 0:
        return MAX_CELL_DEG
    width = bounds[:, 2] - bounds[:, 0]
    height = bounds[:, 3] - bounds[:, 1]
    extent = np.maximum(np.maximum(width, height), MIN_CELL_DEG)
    cell = float(np.clip(np.median(extent) / CELLS_PER_EXTENT, MIN_CELL_DEG, MAX_CELL_DEG))
    total_w = float(bounds[:, 2].max() - bounds[:, 0].min())
    total_h = float(bounds[:, 3].max() - bounds[:, 1].min())
    max_coarse = min(MAX_COARSE_CELLS, max(MIN_COARSE_CELLS, COARSE_CELLS_PER_FENCE * len(bounds)))
    while cell < MAX_CELL_DEG:
        coarse = (total_w / (cell * BLOCK) + 2) * (total_h / (cell * BLOCK) + 2)
        if coarse <= max_coarse and _raster_cells(width, height, cell) <= MAX_RASTER_CELLS:
            break
        cell *= 1.25
    return min(cell, MAX_CELL_DEG)


def _raster_cells(
    width_deg: npt.NDArray[np.float64], height_deg: npt.NDArray[np.float64], cell_deg: float
) -> float:
    """Cells classified at build time: a small fence's whole window; a large one's blocks,
    then the fine cells of about four block-wide bands along its outline."""
    cols = width_deg / cell_deg + 2 * BLOCK
    rows = height_deg / cell_deg + 2 * BLOCK
    dense = cols * rows
    refined = dense / (BLOCK * BLOCK) + 4 * (cols + rows) * BLOCK
    return float(np.sum(np.where(dense <= DENSE_CELLS, dense, refined)))


def build_grid(
    bounds: npt.NDArray[np.float64],
    rasterizers: Sequence[Rasterizer],
    cell_deg: float | None = None,
    dense_cells: int | None = None,
) -> Grid:
    """`bounds[i]` (min lon, min lat, max lon, max lat) surely covers fence i.

    A fence whose window holds more than `dense_cells` (default `DENSE_CELLS`) fine cells is
    classified block by block first; only the blocks its boundary may cross are classified cell
    by cell. Both ways give the same masks (a block wholly inside has every cell inside, one
    wholly outside none), so a few large fences cost about their outline, not their area.
    """
    dense_limit = DENSE_CELLS if dense_cells is None else dense_cells
    s = cell_deg if cell_deg is not None else choose_cell_deg(bounds)
    eps = _eps(s)
    coarse_deg = s * BLOCK
    if len(bounds):
        x0 = math.floor((float(bounds[:, 0].min()) - 2 * s) / coarse_deg) * coarse_deg
        y0 = math.floor((float(bounds[:, 1].min()) - 2 * s) / coarse_deg) * coarse_deg
        coarse_cols = math.ceil((float(bounds[:, 2].max()) + 2 * s - x0) / coarse_deg) + 1
        coarse_rows = math.ceil((float(bounds[:, 3].max()) + 2 * s - y0) / coarse_deg) + 1
    else:
        x0 = y0 = 0.0
        coarse_cols = coarse_rows = 1
    cells: list[npt.NDArray[np.int64]] = []
    fences: list[npt.NDArray[np.int32]] = []
    touches: list[npt.NDArray[np.uint64]] = []
    boundaries: list[npt.NDArray[np.uint64]] = []
    for index, (box, raster) in enumerate(zip(bounds, rasterizers, strict=True)):
        bc0 = max(math.floor((box[0] - eps - x0) / s) - 1, 0) // BLOCK
        br0 = max(math.floor((box[1] - eps - y0) / s) - 1, 0) // BLOCK
        bc1 = min(math.floor((box[2] + eps - x0) / s) + 1, coarse_cols * BLOCK - 1) // BLOCK
        br1 = min(math.floor((box[3] + eps - y0) / s) + 1, coarse_rows * BLOCK - 1) // BLOCK
        n_bcols, n_brows = bc1 - bc0 + 1, br1 - br0 + 1
        origin_x, origin_y = x0 + bc0 * coarse_deg, y0 + br0 * coarse_deg
        if n_brows * n_bcols * BLOCK * BLOCK <= dense_limit:
            window = Window(origin_x, origin_y, s, n_brows * BLOCK, n_bcols * BLOCK)
            block_row, block_col, touched, boundary = _dense_masks(raster, window, eps)
        else:
            coarse = Window(origin_x, origin_y, coarse_deg, n_brows, n_bcols)
            fine = Window(origin_x, origin_y, s, n_brows * BLOCK, n_bcols * BLOCK)
            block_row, block_col, touched, boundary = _refined_masks(raster, coarse, fine, eps)
        cells.append((br0 + block_row) * coarse_cols + (bc0 + block_col))
        fences.append(np.full(len(block_row), index, dtype=np.int32))
        touches.append(touched)
        boundaries.append(boundary)
    cell = np.concatenate(cells) if cells else np.zeros(0, np.int64)
    order = np.argsort(cell, kind="stable")  # fences stay in index order within a cell
    counts = np.bincount(cell, minlength=coarse_cols * coarse_rows)
    cell_start = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=cell_start[1:])
    return Grid(
        x0_deg=x0,
        y0_deg=y0,
        cell_deg=s,
        fine_cols=coarse_cols * BLOCK,
        fine_rows=coarse_rows * BLOCK,
        cell_start=cell_start,
        occupied_bits=np.packbits(counts > 0, bitorder="little"),
        entry_fence=(np.concatenate(fences) if fences else np.zeros(0, np.int32))[order],
        entry_touched=(np.concatenate(touches) if touches else np.zeros(0, np.uint64))[order],
        entry_boundary=(np.concatenate(boundaries) if boundaries else np.zeros(0, np.uint64))[
            order
        ],
    )


Masks = tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]
]


def _dense_masks(raster: Rasterizer, window: Window, eps: float) -> Masks:
    """Every cell of the window, in strips of rows: (block row, block col, touched, boundary)
    for the blocks the fence touches."""
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    touches: list[npt.NDArray[np.uint64]] = []
    boundaries: list[npt.NDArray[np.uint64]] = []
    n_brows, n_bcols = window.rows // BLOCK, window.cols // BLOCK
    strip_blocks = STRIP_ROWS // BLOCK
    for sb0 in range(0, n_brows, strip_blocks):
        n_strip = min(strip_blocks, n_brows - sb0)
        strip = Window(
            window.x0_deg,
            window.y0_deg + sb0 * BLOCK * window.cell_deg,
            window.cell_deg,
            n_strip * BLOCK,
            window.cols,
        )
        inside, boundary = raster.cells(strip, eps)
        inside_bits = _block_masks(inside & ~boundary, n_strip, n_bcols)
        boundary_bits = _block_masks(boundary, n_strip, n_bcols)
        touched = (inside_bits != 0) | (boundary_bits != 0)
        block_row, block_col = np.nonzero(touched)
        rows.append(sb0 + block_row)
        cols.append(block_col)
        touches.append((inside_bits | boundary_bits)[touched])
        boundaries.append(boundary_bits[touched])
    return (
        np.concatenate(rows).astype(np.int64),
        np.concatenate(cols).astype(np.int64),
        np.concatenate(touches),
        np.concatenate(boundaries),
    )


def _refined_masks(raster: Rasterizer, coarse: Window, fine: Window, eps: float) -> Masks:
    """Blocks classified whole first (a coarse cell is one block); the blocks the boundary may
    cross are then classified cell by cell."""
    inside, boundary = raster.cells(coarse, eps)
    full_row, full_col = np.nonzero(inside & ~boundary)
    edge_row, edge_col = np.nonzero(boundary)
    edge_row, edge_col = edge_row.astype(np.int64), edge_col.astype(np.int64)
    cell_inside, cell_boundary = raster.blocks(fine, edge_row, edge_col, eps)
    n = len(edge_row)
    inside_bits = _pack(cell_inside & ~cell_boundary, n)
    boundary_bits = _pack(cell_boundary, n)
    touched_bits = inside_bits | boundary_bits
    keep = touched_bits != 0
    all_cells = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
    return (
        np.concatenate([full_row, edge_row[keep]]).astype(np.int64),
        np.concatenate([full_col, edge_col[keep]]).astype(np.int64),
        np.concatenate([np.full(len(full_row), all_cells, np.uint64), touched_bits[keep]]),
        np.concatenate([np.zeros(len(full_row), np.uint64), boundary_bits[keep]]),
    )


def _pack(cells: npt.NDArray[np.bool_], n: int) -> npt.NDArray[np.uint64]:
    """(n, 8, 8) booleans -> one uint64 per block, bit row * 8 + col."""
    packed = np.packbits(cells.reshape(n, BLOCK * BLOCK), axis=-1, bitorder="little")
    return packed.view("<u8").reshape(n).astype(np.uint64)


def _block_masks(cells: Bool2D, n_brows: int, n_bcols: int) -> npt.NDArray[np.uint64]:
    """(rows, cols) booleans -> one uint64 per 8x8 block, bit (row % 8) * 8 + (col % 8)."""
    blocks = cells.reshape(n_brows, BLOCK, n_bcols, BLOCK).transpose(0, 2, 1, 3)
    packed = np.packbits(
        blocks.reshape(n_brows, n_bcols, BLOCK * BLOCK), axis=-1, bitorder="little"
    )
    return packed.view("<u8").reshape(n_brows, n_bcols).astype(np.uint64)
