"""Classifies the fine grid cells around one fence as outside, wholly inside or on the boundary.

The grid is what lets a batch skip exact tests: a point in a cell wholly inside a fence is inside,
a point in a cell the fence does not touch is outside, and only points in boundary cells need an
exact predicate. Every classification here is conservative by `eps` degrees, so a point that
rounding assigns to a neighbouring cell still gets the right answer.

A rasterizer answers for a whole block-aligned window of the fine grid (`cells`: a pair of
boolean arrays, inside and boundary), or for chosen 8x8 blocks of it only (`blocks`: the same,
shaped (n, 8, 8)). The second lets a large fence be classified at block size first and refined
only where its boundary runs: the work follows the perimeter, not the area. Both give the same
answer for a cell, so how a fence was split never changes the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from geofence.geodesy import MAX_M_PER_DEG, haversine_m, project

BLOCK = 8  # fine cells per coarse cell side: 64 fine cells -> one uint64 mask
Bool2D = npt.NDArray[np.bool_]
Bool3D = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Window:
    """A block-aligned window of the fine grid: origin (x0, y0) in degrees, rows x cols cells."""

    x0_deg: float
    y0_deg: float
    cell_deg: float
    rows: int
    cols: int

    def centres(self, row_lo: int, row_hi: int) -> tuple[FloatArray, FloatArray]:
        """Cell-centre coordinates for rows [row_lo, row_hi), shape (rows, cols)."""
        xs = self.x0_deg + (np.arange(self.cols) + 0.5) * self.cell_deg
        ys = self.y0_deg + (np.arange(row_lo, row_hi) + 0.5) * self.cell_deg
        return np.broadcast_to(xs, (row_hi - row_lo, self.cols)), np.broadcast_to(
            ys[:, None], (row_hi - row_lo, self.cols)
        )

    def block_centres(self, block_row: IntArray, block_col: IntArray) -> tuple[FloatArray, ...]:
        """Cell-centre coordinates of the fine cells of the given blocks, shape (n, 8, 8)."""
        offset = np.arange(BLOCK) + 0.5
        xs = self.x0_deg + (block_col[:, None] * BLOCK + offset) * self.cell_deg
        ys = self.y0_deg + (block_row[:, None] * BLOCK + offset) * self.cell_deg
        shape = (len(block_row), BLOCK, BLOCK)
        return np.broadcast_to(xs[:, None, :], shape), np.broadcast_to(ys[:, :, None], shape)


class Rasterizer(Protocol):
    def cells(self, window: Window, eps_deg: float) -> tuple[Bool2D, Bool2D]:
        """(inside, boundary) for every cell of the window."""
        ...

    def blocks(
        self, window: Window, block_row: IntArray, block_col: IntArray, eps_deg: float
    ) -> tuple[Bool3D, Bool3D]:
        """(inside, boundary) for the fine cells of some blocks of the window, (n, 8, 8)."""
        ...


class PolygonRaster:
    """Scanline rasterization: boundary cells from the rings' edges, the rest by crossing parity.

    A cell no edge touches lies wholly on one side of the boundary, so the even-odd count of edge
    crossings left of its centre decides it (valid polygons and multipolygons, holes included).
    """

    def __init__(self, geometry: shapely.Geometry) -> None:
        rings = shapely.get_rings(shapely.get_parts(geometry))
        coords, ring_index = shapely.get_coordinates(rings, return_index=True)
        same_ring = ring_index[:-1] == ring_index[1:]
        self.x1, self.y1 = coords[:-1, 0][same_ring], coords[:-1, 1][same_ring]
        self.x2, self.y2 = coords[1:, 0][same_ring], coords[1:, 1][same_ring]

    def cells(self, window: Window, eps_deg: float) -> tuple[Bool2D, Bool2D]:
        rows, cols = window.rows, window.cols
        row, c_lo, c_hi = self._boundary_spans(window, eps_deg)
        width = cols + 1
        marks = np.bincount(row * width + c_lo, minlength=rows * width)
        marks -= np.bincount(row * width + c_hi + 1, minlength=rows * width)
        boundary = np.cumsum(marks.reshape(rows, width), axis=1)[:, :cols] > 0
        row, first_col = self._crossings(window)
        crossings = np.bincount(row * width + first_col, minlength=rows * width)
        parity = np.cumsum(crossings.reshape(rows, width), axis=1)[:, :cols] & 1
        return parity.astype(bool) & ~boundary, boundary

    def blocks(
        self, window: Window, block_row: IntArray, block_col: IntArray, eps_deg: float
    ) -> tuple[Bool3D, Bool3D]:
        """The same answers as `cells`, read from sorted span and crossing lists per row."""
        width = window.cols + 1
        offset = np.arange(BLOCK, dtype=np.int64)
        shape = (len(block_row), BLOCK, BLOCK)
        row = np.broadcast_to((block_row[:, None] * BLOCK + offset)[:, :, None], shape).ravel()
        col = np.broadcast_to((block_col[:, None] * BLOCK + offset)[:, None, :], shape).ravel()

        s_row, c_lo, c_hi = self._boundary_spans(window, eps_deg)
        # Boundary: some span of the cell's row starts at or before it and ends at or after it.
        # Opening marks at c_lo and closing marks at c_hi + 1, per row: the running count of
        # opens minus closes at the cell is positive exactly when a span covers it.
        opens = np.sort(s_row * width + c_lo)
        closes = np.sort(s_row * width + c_hi + 1)
        key = row * width + col
        row_key = row * width
        covering = (np.searchsorted(opens, key, "right") - np.searchsorted(opens, row_key)) - (
            np.searchsorted(closes, key, "right") - np.searchsorted(closes, row_key)
        )
        boundary = covering > 0

        x_row, first_col = self._crossings(window)
        crossings = np.sort(x_row * width + first_col)
        count = np.searchsorted(crossings, key, "right") - np.searchsorted(crossings, row_key)
        inside = ((count & 1) == 1) & ~boundary
        return inside.reshape(shape), boundary.reshape(shape)

    def _boundary_spans(self, window: Window, eps_deg: float) -> tuple[IntArray, ...]:
        """Per (edge, row): the columns whose eps-grown cells the edge meets in that row."""
        rows, cols, s = window.rows, window.cols, window.cell_deg
        x0, y0 = window.x0_deg, window.y0_deg
        x1, y1, x2, y2 = self.x1, self.y1, self.x2, self.y2
        lo = np.floor((np.minimum(y1, y2) - eps_deg - y0) / s).astype(np.int64)
        hi = np.floor((np.maximum(y1, y2) + eps_deg - y0) / s).astype(np.int64)
        # Edges wholly above or below the window meet none of its cells.
        near = (hi >= 0) & (lo <= rows - 1)
        lo, hi = np.clip(lo[near], 0, rows - 1), np.clip(hi[near], 0, rows - 1)
        x1, y1, x2, y2 = x1[near], y1[near], x2[near], y2[near]
        span = hi - lo + 1
        edge = np.repeat(np.arange(len(x1)), span)
        row = lo[edge] + ramp(span)
        ex1, ey1, ex2, ey2 = x1[edge], y1[edge], x2[edge], y2[edge]
        band_lo = y0 + row * s - eps_deg
        band_hi = y0 + (row + 1) * s + eps_deg
        dy = ey2 - ey1
        flat = dy == 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            ta = np.where(flat, 0.0, (band_lo - ey1) / dy)
            tb = np.where(flat, 1.0, (band_hi - ey1) / dy)
        t_lo = np.clip(np.minimum(ta, tb), 0.0, 1.0)
        t_hi = np.clip(np.maximum(ta, tb), 0.0, 1.0)
        xa, xb = ex1 + t_lo * (ex2 - ex1), ex1 + t_hi * (ex2 - ex1)
        c_lo = np.floor((np.minimum(xa, xb) - eps_deg - x0) / s).astype(np.int64)
        c_hi = np.floor((np.maximum(xa, xb) + eps_deg - x0) / s).astype(np.int64)
        # Spans wholly left or right of the window meet none of its cells either.
        seen = (c_hi >= 0) & (c_lo <= cols - 1)
        c_lo, c_hi = np.clip(c_lo[seen], 0, cols - 1), np.clip(c_hi[seen], 0, cols - 1)
        return row[seen], c_lo, c_hi

    def _crossings(self, window: Window) -> tuple[IntArray, IntArray]:
        """Per edge crossing a row's centre line: the row and the first column right of it
        (`cols` when none in the window); crossings left of the window count from column 0."""
        rows, cols, s = window.rows, window.cols, window.cell_deg
        x0, y0 = window.x0_deg, window.y0_deg
        x1, y1, x2, y2 = self.x1, self.y1, self.x2, self.y2
        y_lo, y_hi = np.minimum(y1, y2), np.maximum(y1, y2)
        r_first = np.ceil((y_lo - y0) / s - 0.5).astype(np.int64)  # first centre line >= y_lo
        r_last = np.ceil((y_hi - y0) / s - 0.5).astype(np.int64) - 1  # last centre line < y_hi
        # One row of slack each side: the exact half-open test below decides, so rounding here
        # can never drop a crossing.
        r_first, r_last = np.clip(r_first - 1, 0, rows), np.clip(r_last + 1, -1, rows - 1)
        span = np.maximum(r_last - r_first + 1, 0)
        edge = np.repeat(np.arange(len(x1)), span)
        row = r_first[edge] + ramp(span)
        yc = y0 + (row + 0.5) * s
        ex1, ey1, ex2, ey2 = x1[edge], y1[edge], x2[edge], y2[edge]
        keep = (ey1 <= yc) != (ey2 <= yc)  # half-open: a vertex on the line counts once
        row, yc = row[keep], yc[keep]
        ex1, ey1, ex2, ey2 = ex1[keep], ey1[keep], ex2[keep], ey2[keep]
        xi = ex1 + (yc - ey1) * (ex2 - ex1) / (ey2 - ey1)
        first_col = np.clip(np.floor((xi - x0) / s - 0.5).astype(np.int64) + 1, 0, cols)
        return row, first_col


class _DistanceRaster:
    """Classification by a ground distance at cell centres, +- a bound of the cell's size."""

    limit_m: float
    scale: float

    def distance_m(self, lon: FloatArray, lat: FloatArray) -> FloatArray:
        raise NotImplementedError

    def cells(self, window: Window, eps_deg: float) -> tuple[Bool2D, Bool2D]:
        cx, cy = window.centres(0, window.rows)
        return self._classify(self.distance_m(cx, cy), window.cell_deg + 2.0 * eps_deg)

    def blocks(
        self, window: Window, block_row: IntArray, block_col: IntArray, eps_deg: float
    ) -> tuple[Bool3D, Bool3D]:
        cx, cy = window.block_centres(block_row, block_col)
        return self._classify(self.distance_m(cx, cy), window.cell_deg + 2.0 * eps_deg)

    def _classify(self, distance_m: FloatArray, cell_deg: float) -> tuple[Bool2D, Bool2D]:
        # Any two points of one cell are at most (dlon + dlat) * metres-per-degree apart on the
        # ground.
        reach_m = cell_deg * MAX_M_PER_DEG * self.scale + 1e-6
        boundary = np.abs(distance_m - self.limit_m) <= reach_m
        inside = distance_m < self.limit_m - reach_m
        return inside, boundary


class CircleRaster(_DistanceRaster):
    """Haversine from the centre to each cell centre."""

    def __init__(self, lon_deg: float, lat_deg: float, radius_m: float) -> None:
        self.lon_deg, self.lat_deg = lon_deg, lat_deg
        self.limit_m, self.scale = radius_m, 1.0

    def distance_m(self, lon: FloatArray, lat: FloatArray) -> FloatArray:
        return haversine_m(self.lon_deg, self.lat_deg, lon, lat)


class CorridorRaster(_DistanceRaster):
    """Distance in the corridor's local projection from each cell centre to its line."""

    def __init__(
        self, line_m: shapely.Geometry, transformer: pyproj.Transformer, buffer_m: float
    ) -> None:
        self.line_m, self.transformer = line_m, transformer
        # 5 % covers the azimuthal projection's scale error well beyond 1,000 km from its
        # centre.
        self.limit_m, self.scale = buffer_m, 1.05

    def distance_m(self, lon: FloatArray, lat: FloatArray) -> FloatArray:
        px, py = project(self.transformer, lon.ravel(), lat.ravel())
        distance = shapely.distance(self.line_m, shapely.points(px, py))
        return np.asarray(distance, dtype=np.float64).reshape(lon.shape)


def ramp(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """0, 1, ..., counts[0]-1, 0, 1, ..., counts[1]-1, ...: offsets inside repeated groups."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
