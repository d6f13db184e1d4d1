"""Batch reverse geocoding gives GEOS's answer on the packaged outlines, for points anywhere and
points hugging borders, through both of its paths (the engine's grid for a large batch, the
outlines' tree for a small one)."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence.admin import SMALL_BATCH, AdminRegions, default_regions

REGIONS: AdminRegions = default_regions()
TREE = shapely.STRtree(REGIONS.outlines)


def oracle(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Lowest county whose interior holds each point (shapely.contains_xy), -1 for none."""
    point, unit = TREE.query(shapely.points(lon, lat))
    inside = shapely.contains_xy(REGIONS.outlines[unit], lon[point], lat[point])
    point, unit = point[inside], unit[inside]
    out = np.full(len(lon), -1)
    order = np.lexsort((-unit, point))
    out[point[order]] = unit[order]
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.sampled_from([1, 7, SMALL_BATCH - 1, SMALL_BATCH, 3000]),
    offset_m=st.sampled_from([0.0, 0.5, 5.0, 50.0, 500.0]),
)
def test_points_near_borders_resolve_as_geos_says(seed: int, n: int, offset_m: float) -> None:
    rng = np.random.default_rng(seed)
    unit = rng.integers(0, len(REGIONS), n)
    # A vertex of each chosen county's outline, moved a little: on, beside or across a border.
    rings = shapely.get_exterior_ring(
        shapely.get_geometry(
            REGIONS.outlines[unit],
            rng.integers(0, 1_000, n)
            % np.maximum(shapely.get_num_geometries(REGIONS.outlines[unit]), 1),
        )
    )
    count = shapely.get_num_points(rings)
    vertex = shapely.get_point(rings, (rng.random(n) * count).astype(np.int64))
    xy = shapely.get_coordinates(vertex)
    assert len(xy) == n
    angle = rng.uniform(0, 2 * np.pi, n)
    lon = xy[:, 0] + np.cos(angle) * offset_m / 95_000
    lat = xy[:, 1] + np.sin(angle) * offset_m / 111_000
    assert (REGIONS.resolve(lon, lat) == oracle(lon, lat)).all()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.sampled_from([3, 600]))
def test_points_anywhere_resolve_as_geos_says(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(70, 140, n)
    lat = rng.uniform(15, 56, n)
    assert (REGIONS.resolve(lon, lat) == oracle(lon, lat)).all()
