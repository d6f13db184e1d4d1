"""Exact point-in-polygon for the grid's boundary cells, on whole batches of (point, fence) pairs.

A horizontal ray from the point crosses only edges whose y-range holds the point's y, and those
all lie in the point's fine grid row: so each polygon keeps, per fine row of its extent, the
list of its edges that reach into that row (`EdgeRows`), and a pair tests only those, a few
edges instead of the whole outline. The tests follow GEOS's ray-crossing counter rule for rule
(`shapely.contains_xy` on a prepared polygon): a point on a vertex or on an edge is on the
boundary, so not contained; otherwise it is inside when the ray crosses an odd number of edges
(an edge spanning the point's y with its lower end included and its upper end excluded, and the
point strictly left of it). The side of an edge is GEOS's floating-point orientation with GEOS's
own error filter; the rare pair whose filter cannot decide (a point within ~1e-15 relative of an
edge's line) is reported `undecided`, for GEOS itself to answer. So where this decides, it gives
GEOS's answer bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geofence.raster import ramp

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# GEOS's orientation filter (CGAlgorithmsDD::orientationIndexFilter): a determinant this close
# to zero, relative to its terms, is not trusted in double precision.
DP_SAFE_EPSILON = 1e-15


@dataclass(frozen=True, slots=True)
class EdgeRows:
    """Per polygon and fine row of a grid (origin `y0_deg`, rows `cell_deg` high), the edges
    reaching into the row; fences that are not polygons list no row."""

    y0_deg: float
    cell_deg: float
    row0: IntArray  # per fence: the first row listed
    rows: IntArray  # per fence: how many rows are listed (0: not a polygon)
    slot0: IntArray  # per fence: the slot of its first row
    slot_start: IntArray  # CSR over slots (fence, row): slot_start[s] .. slot_start[s + 1]
    edge: npt.NDArray[np.int32]  # edge index per CSR entry, in ring order within a slot
    ends: FloatArray  # (edges, 4): x1, y1, x2, y2 per edge
    has_level: bool  # does any edge run level (y1 == y2)


def edge_rows(
    edges: Sequence[tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None],
    y0_deg: float,
    cell_deg: float,
) -> EdgeRows:
    """`edges[i]` is fence i's (x1, y1, x2, y2) edge columns, None for a fence that is not a
    polygon."""
    n = len(edges)
    owner_parts: list[IntArray] = []
    columns: list[list[FloatArray]] = [[], [], [], []]
    for i, fence_edges in enumerate(edges):
        if fence_edges is None or len(fence_edges[0]) == 0:
            continue
        owner_parts.append(np.full(len(fence_edges[0]), i, dtype=np.int64))
        for column, values in zip(columns, fence_edges, strict=True):
            column.append(np.asarray(values, dtype=np.float64))
    empty = np.zeros(0, dtype=np.float64)
    x1, y1, x2, y2 = (np.concatenate(c) if c else empty for c in columns)
    owner = np.concatenate(owner_parts) if owner_parts else np.zeros(0, dtype=np.int64)
    if len(owner) >= 2**31:
        raise ValueError("too many polygon edges for one fence set")
    inv_cell = 1.0 / cell_deg
    eps = cell_deg * 1e-6
    # An edge is listed in every row its y-range, grown by eps, reaches: rounding in the row of a
    # point (~1e-11 cells) is far below eps, so a point's row lists every edge its y meets.
    lo = np.floor((np.minimum(y1, y2) - eps - y0_deg) * inv_cell).astype(np.int64)
    hi = np.floor((np.maximum(y1, y2) + eps - y0_deg) * inv_cell).astype(np.int64)
    row0 = np.zeros(n, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    if len(owner):
        row0[:] = np.iinfo(np.int64).max
        np.minimum.at(row0, owner, lo)
        np.maximum.at(last, owner, hi)
        row0[last < 0] = 0
    rows = np.where(last >= 0, last - row0 + 1, 0)
    slot0 = np.cumsum(rows) - rows
    span = hi - lo + 1
    entry_edge = np.repeat(np.arange(len(owner), dtype=np.int64), span)
    entry_slot = (slot0 - row0)[owner][entry_edge] + lo[entry_edge] + ramp(span)
    order = np.argsort(entry_slot, kind="stable")
    n_slots = int(rows.sum())
    slot_start = np.zeros(n_slots + 1, dtype=np.int64)
    np.cumsum(np.bincount(entry_slot, minlength=n_slots), out=slot_start[1:])
    return EdgeRows(
        y0_deg=y0_deg,
        cell_deg=cell_deg,
        row0=row0,
        rows=rows,
        slot0=slot0,
        slot_start=slot_start,
        edge=entry_edge[order].astype(np.int32),
        ends=np.column_stack([x1, y1, x2, y2]),
        has_level=bool(np.any(y1 == y2)),
    )


def contains(
    table: EdgeRows, fence: npt.NDArray[np.integer], x: FloatArray, y: FloatArray
) -> tuple[BoolArray, BoolArray]:
    """(inside, undecided) per pair of polygon `fence` and point (x, y): inside as GEOS's
    `contains` answers it wherever `undecided` is False."""
    n = len(fence)
    fence = fence.astype(np.intp, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        row = np.floor((y - table.y0_deg) * (1.0 / table.cell_deg))
    rel = row - table.row0[fence]
    listed = (rel >= 0) & (rel < table.rows[fence])  # else no list: GEOS decides
    slot = table.slot0[fence] + np.where(listed, rel, 0).astype(np.intp)
    start = table.slot_start[slot]
    count = table.slot_start[slot + 1] - start
    count[~listed] = 0
    pair = np.repeat(np.arange(n, dtype=np.intp), count)
    entry = np.arange(len(pair), dtype=np.intp)
    entry -= np.repeat(np.cumsum(count) - count - start, count)
    edge = table.edge[entry].astype(np.intp)
    px, py = x[pair], y[pair]
    # Edge ends relative to the point: a difference of doubles is zero exactly when they are
    # equal, and these are GEOS's own terms. One row gather for all four ends.
    ends = np.take(table.ends, edge, axis=0)
    dx1 = ends[:, 0] - px
    dy1 = ends[:, 1] - py
    dx2 = ends[:, 2] - px
    dy2 = ends[:, 3] - py
    # GEOS's RayCrossingCounter.countSegment, rule by rule. An edge wholly left of the point
    # counts for nothing and holds no boundary point; the point may be the edge's end vertex,
    # or lie on a level edge (which never counts as a crossing).
    right = np.maximum(dx1, dx2) >= 0
    on_edge = (dx2 == 0) & (dy2 == 0)
    if table.has_level:
        level = (dy1 == 0) & (dy2 == 0)
        on_edge |= level & right & (np.minimum(dx1, dx2) <= 0)
    # Upward edges include their start and exclude their end, downward ones the reverse.
    upward = dy2 > 0
    straddle = ((dy1 > 0) != upward) & right
    left_term = dx1 * dy2
    right_term = dy1 * dx2
    det = left_term - right_term
    # GEOS's filter in one comparison: terms of opposite signs (or a zero one) cannot cancel,
    # and then |det| is their summed magnitude, above the bound; for terms of one sign the
    # bound is GEOS's, DP_SAFE_EPSILON times their summed magnitude.
    unsure = np.abs(det) < DP_SAFE_EPSILON * np.abs(left_term + right_term)
    unsure &= straddle
    sure = straddle ^ unsure
    on_edge |= sure & (det == 0)
    # The edge crosses the ray right of the point when the point is left of the upward edge.
    crosses = sure & ((det > 0) == upward) & (det != 0)
    crossings = np.bincount(pair, weights=crosses, minlength=n)
    boundary = np.zeros(n, dtype=bool)
    boundary[pair[on_edge]] = True
    undecided = ~listed
    undecided[pair[unsure]] = True
    inside = (crossings.astype(np.int64) & 1).astype(bool) & ~boundary
    return inside, undecided
