"""The packed form of an administrative boundary set: outlines as delta-encoded steps of
1e-5 degrees (16 bits where they fit), unit names as a JSON table.
`scripts/build_admin_boundaries.py` packs; `unpack_units` gives the polygons back. 1e-5
degrees (1.1 m) are far below the outlines' simplification (~50-75 m).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

SCALE = 100_000  # 1e-5 degrees, about 1.1 m
INT16_MAX = 32_767


def pack_units(
    geometries: Sequence[shapely.Geometry], units: Sequence[Mapping[str, Any]]
) -> dict[str, npt.NDArray[Any]]:
    """Arrays for `np.savez_compressed`: per unit its polygons, per polygon its rings (shell
    first), per ring its vertices (closing vertex dropped), first vertex absolute, then deltas."""
    unit_polygons: list[int] = []
    polygon_rings: list[int] = []
    ring_vertices: list[int] = []
    chunks: list[npt.NDArray[np.int32]] = []
    for geometry in geometries:
        polygons = [p for p in shapely.get_parts(geometry) if p.geom_type == "Polygon"]
        polygons = [p for p in polygons if not p.is_empty]
        unit_polygons.append(len(polygons))
        for polygon in polygons:
            rings = [polygon.exterior, *polygon.interiors]
            polygon_rings.append(len(rings))
            for ring in rings:
                xy = np.asarray(ring.coords)[:-1]
                fixed = np.rint(xy * SCALE).astype(np.int64)
                delta = fixed.copy()
                delta[1:] -= fixed[:-1]
                ring_vertices.append(len(fixed))
                chunks.append(delta.astype(np.int32))
    deltas = np.concatenate(chunks) if chunks else np.zeros((0, 2), np.int32)
    # Most steps fit 16 bits (0.33 degrees); the rest (each ring's first vertex, long straight
    # borders) are kept whole beside them, which halves the file.
    wide = np.abs(deltas) > INT16_MAX
    narrow = np.where(wide, 0, deltas).astype(np.int16)
    return {
        "unit_polygons": np.array(unit_polygons, np.int32),
        "polygon_rings": np.array(polygon_rings, np.int32),
        "ring_vertices": np.array(ring_vertices, np.int32),
        "vertices": narrow,
        "wide_at": np.flatnonzero(wide.ravel()).astype(np.int64),
        "wide_value": deltas.ravel()[wide.ravel()].astype(np.int32),
        "units": np.frombuffer(json.dumps(list(units), ensure_ascii=False).encode(), np.uint8),
    }


def unpack_units(
    arrays: Mapping[str, npt.NDArray[Any]],
) -> tuple[list[shapely.Geometry], list[dict[str, Any]]]:
    """(one MultiPolygon per unit, the unit table) from `pack_units`' arrays."""
    ring_vertices = arrays["ring_vertices"].astype(np.int64)
    delta = arrays["vertices"].astype(np.int64)
    delta.ravel()[arrays["wide_at"]] = arrays["wide_value"]
    ring_start = np.zeros(len(ring_vertices), np.int64)
    np.cumsum(ring_vertices[:-1], out=ring_start[1:])
    # Undo the deltas ring by ring: a running sum restarted at each ring's first vertex.
    total = np.cumsum(delta, axis=0)
    base = np.zeros_like(delta)
    if len(ring_start):
        before = np.where(ring_start > 0, ring_start - 1, 0)
        offsets = np.where((ring_start > 0)[:, None], total[before], 0)
        base = np.repeat(offsets, ring_vertices, axis=0)
    xy = (total - base).astype(np.float64) / SCALE
    # Each ring closed again by repeating its first vertex after its last.
    closed = np.insert(np.arange(len(xy)), ring_start + ring_vertices, ring_start)
    rings = shapely.linearrings(
        xy[closed], indices=np.repeat(np.arange(len(ring_vertices)), ring_vertices + 1)
    )
    polygon_rings = arrays["polygon_rings"].astype(np.int64)
    polygons: list[shapely.Geometry] = []
    at = 0
    for n in polygon_rings.tolist():
        polygons.append(shapely.Polygon(rings[at], list(rings[at + 1 : at + n])))
        at += n
    geometries: list[shapely.Geometry] = []
    at = 0
    for n in arrays["unit_polygons"].astype(np.int64).tolist():
        geometries.append(shapely.MultiPolygon(polygons[at : at + n]))
        at += n
    units = json.loads(bytes(arrays["units"]).decode())
    return geometries, units
