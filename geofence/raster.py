"""Classifies the fine grid cells around one fence as outside, wholly inside or on the boundary.

The grid is what lets a batch skip exact tests: a point in a cell wholly inside a fence is inside,
a point in a cell the fence does not touch is outside, and only points in boundary cells need an
exact predicate. Every classification here is conservative by `eps` degrees, so a point that
rounding assigns to a neighbouring cell still gets the right answer.

A fence's raster is a window of whole 8x8 blocks of the global fine grid; the result is a pair of
boolean arrays (inside, boundary) over that window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from geofence.geodesy import MAX_M_PER_DEG, haversine_m, project

BLOCK = 8  # fine cells per coarse cell side: 64 fine cells -> one uint64 mask
Bool2D = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


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


def polygon_cells(
    geometry: shapely.Geometry, window: Window, eps_deg: float
) -> tuple[Bool2D, Bool2D]:
    """Scanline rasterization: boundary cells from the rings' edges, the rest by crossing parity.

    A cell no edge touches lies wholly on one side of the boundary, so the even-odd count of edge
    crossings left of its centre decides it (valid polygons and multipolygons, holes included).
    """
    rings = shapely.get_rings(shapely.get_parts(geometry))
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_index[:-1] == ring_index[1:]
    x1, y1 = coords[:-1, 0][same_ring], coords[:-1, 1][same_ring]
    x2, y2 = coords[1:, 0][same_ring], coords[1:, 1][same_ring]
    rows, cols, s = window.rows, window.cols, window.cell_deg
    x0, y0 = window.x0_deg, window.y0_deg

    # Boundary: every cell whose eps-grown box meets an edge, one row band at a time.
    lo = np.floor((np.minimum(y1, y2) - eps_deg - y0) / s).astype(np.int64)
    hi = np.floor((np.maximum(y1, y2) + eps_deg - y0) / s).astype(np.int64)
    lo, hi = np.clip(lo, 0, rows - 1), np.clip(hi, 0, rows - 1)
    span = hi - lo + 1
    edge = np.repeat(np.arange(len(x1)), span)
    row = lo[edge] + _ramp(span)
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
    c_lo, c_hi = np.clip(c_lo, 0, cols - 1), np.clip(c_hi, 0, cols - 1)
    marks = np.zeros((rows, cols + 1), dtype=np.int32)
    np.add.at(marks, (row, c_lo), 1)
    np.add.at(marks, (row, c_hi + 1), -1)
    boundary = np.cumsum(marks, axis=1)[:, :cols] > 0

    # Inside: parity of edge crossings left of each cell centre, on each row's centre line.
    y_lo, y_hi = np.minimum(y1, y2), np.maximum(y1, y2)
    r_first = np.ceil((y_lo - y0) / s - 0.5).astype(np.int64)  # first centre line >= y_lo
    r_last = np.ceil((y_hi - y0) / s - 0.5).astype(np.int64) - 1  # last centre line < y_hi
    # One row of slack each side: the exact half-open test below decides, so rounding here
    # can never drop a crossing.
    r_first, r_last = np.clip(r_first - 1, 0, rows), np.clip(r_last + 1, -1, rows - 1)
    span = np.maximum(r_last - r_first + 1, 0)
    edge = np.repeat(np.arange(len(x1)), span)
    row = r_first[edge] + _ramp(span)
    yc = y0 + (row + 0.5) * s
    ex1, ey1, ex2, ey2 = x1[edge], y1[edge], x2[edge], y2[edge]
    keep = (ey1 <= yc) != (ey2 <= yc)  # half-open: a vertex on the line counts once
    row, yc = row[keep], yc[keep]
    ex1, ey1, ex2, ey2 = ex1[keep], ey1[keep], ex2[keep], ey2[keep]
    xi = ex1 + (yc - ey1) * (ex2 - ex1) / (ey2 - ey1)
    first_col = np.clip(np.floor((xi - x0) / s - 0.5).astype(np.int64) + 1, 0, cols)
    crossings = np.zeros((rows, cols + 1), dtype=np.int32)
    np.add.at(crossings, (row, first_col), 1)
    inside = (np.cumsum(crossings, axis=1)[:, :cols] & 1).astype(bool) & ~boundary
    return inside, boundary


def circle_cells(
    lon_deg: float, lat_deg: float, radius_m: float, window: Window, eps_deg: float
) -> tuple[Bool2D, Bool2D]:
    """Haversine from the centre to each cell centre, +- a ground bound of the cell's size."""
    cx, cy = window.centres(0, window.rows)
    distance = haversine_m(lon_deg, lat_deg, cx, cy)
    return _by_distance(distance, radius_m, window.cell_deg + 2.0 * eps_deg, 1.0)


def corridor_cells(
    line_m: shapely.Geometry,
    transformer: object,
    buffer_m: float,
    window: Window,
    eps_deg: float,
) -> tuple[Bool2D, Bool2D]:
    """Distance in the corridor's local projection from each cell centre to its line."""
    cx, cy = window.centres(0, window.rows)
    px, py = project(transformer, cx.ravel(), cy.ravel())  # type: ignore[arg-type]
    distance = shapely.distance(line_m, shapely.points(px, py)).reshape(cx.shape)
    # 5 % covers the azimuthal projection's scale error well beyond 1,000 km from its centre.
    return _by_distance(distance, buffer_m, window.cell_deg + 2.0 * eps_deg, 1.05)


def _by_distance(
    distance_m: FloatArray, limit_m: float, cell_deg: float, scale: float
) -> tuple[Bool2D, Bool2D]:
    # Any two points of one cell are at most (dlon + dlat) * metres-per-degree apart on the ground.
    reach_m = cell_deg * MAX_M_PER_DEG * scale + 1e-6
    boundary = np.abs(distance_m - limit_m) <= reach_m
    inside = distance_m < limit_m - reach_m
    return inside, boundary


def _ramp(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """0, 1, ..., counts[0]-1, 0, 1, ..., counts[1]-1, ...: offsets inside repeated groups."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
