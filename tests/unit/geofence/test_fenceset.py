"""Batch membership: polygons, holes, circles, corridors, vehicle restrictions, crossings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from geofence import Fence, FenceKind, FenceSet
from geofence.geodesy import EARTH_RADIUS_M, haversine_m


def destination(lon: float, lat: float, bearing_deg: float, metres: float) -> tuple[float, float]:
    """The point `metres` from (lon, lat) on the haversine sphere."""
    delta, theta = metres / EARTH_RADIUS_M, math.radians(bearing_deg)
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lmb2 = lmb1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(lmb2), math.degrees(phi2)


def contains(
    fence_set: FenceSet, points: list[tuple[float, float]], vehicle: int = -1
) -> set[tuple[int, str]]:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    rows, fences = fence_set.contains(lon, lat, np.full(len(points), vehicle, np.int32))
    return {(int(r), fence_set.fences[int(f)].id) for r, f in zip(rows, fences, strict=True)}


DONUT = shapely.Polygon(
    [(116.0, 39.0), (117.0, 39.0), (117.0, 40.0), (116.0, 40.0)],
    holes=[[(116.4, 39.4), (116.6, 39.4), (116.6, 39.6), (116.4, 39.6)]],
)


def test_a_polygon_contains_its_interior_but_not_its_hole_edge_or_outside() -> None:
    fence_set = FenceSet([Fence("d", FenceKind.ZONE, DONUT)], version=1)
    points = [(116.2, 39.2), (116.5, 39.5), (116.0, 39.5), (116.4, 39.5), (118.0, 39.5)]
    assert contains(fence_set, points) == {(0, "d")}


def test_a_circle_holds_points_within_its_radius_in_metres() -> None:
    centre = (116.4, 39.9)
    fence_set = FenceSet(
        [Fence("c", FenceKind.HOTSPOT, shapely.Point(centre), radius_m=50.0)], version=1
    )
    points = [
        destination(*centre, bearing, metres) for bearing in (0, 90, 225) for metres in (49.9, 50.1)
    ]
    assert contains(fence_set, points) == {(0, "c"), (2, "c"), (4, "c")}


def test_a_corridor_holds_points_within_its_buffer_of_the_line() -> None:
    line = shapely.LineString([(116.0, 39.9), (116.5, 39.9)])
    fence_set = FenceSet([Fence("r", FenceKind.ZONE, line, buffer_m=100.0)], version=1)
    north_90 = destination(116.25, 39.9, 0, 90)
    north_110 = destination(116.25, 39.9, 0, 110)
    beyond_end = destination(116.5, 39.9, 90, 150)
    assert contains(fence_set, [north_90, north_110, beyond_end]) == {(0, "r")}


def test_restricted_fences_only_match_their_vehicles() -> None:
    square = shapely.box(0, 0, 1, 1)
    fences = [
        Fence("all", FenceKind.ZONE, square),
        Fence("v2", FenceKind.ALLOWED_AREA, square, vehicles=frozenset({"V2"})),
    ]
    fence_set = FenceSet(fences, version=1, vehicles=["V1", "V2"])
    lon, lat = np.full(3, 0.5), np.full(3, 0.5)
    rows, found = fence_set.contains(lon, lat, np.array([0, 1, -1], np.int32))
    assert list(zip(rows.tolist(), found.tolist(), strict=True)) == [(0, 0), (1, 0), (1, 1), (2, 0)]
    rebound = fence_set.with_vehicles(["V2"])
    rows, found = rebound.contains(lon[:1], lat[:1], np.array([0], np.int32))
    assert found.tolist() == [0, 1]


def test_an_out_of_range_vehicle_index_matches_no_restricted_fence() -> None:
    # Keys are fence * (V + 1) + vehicle: an index past the list must not alias another fence.
    square = shapely.box(0, 0, 1, 1)
    fences = [
        Fence("v1", FenceKind.ALLOWED_AREA, square, vehicles=frozenset({"V1"})),
        Fence("v2", FenceKind.ALLOWED_AREA, square, vehicles=frozenset({"V2"})),
    ]
    fence_set = FenceSet(fences, version=1, vehicles=["V1", "V2"])
    vehicle = np.array([0, 1, 3, 4, 5, -1, -4], np.int64)
    rows, found = fence_set.contains(np.full(7, 0.5), np.full(7, 0.5), vehicle)
    assert list(zip(rows.tolist(), found.tolist(), strict=True)) == [(0, 0), (1, 1)]
    rows, found = fence_set.contains(np.full(7, 0.5), np.full(7, 0.5), vehicle.astype(np.int32))
    assert rows.tolist() == [0, 1]


def test_pairs_come_sorted_by_row_then_fence_and_nan_matches_nothing() -> None:
    fences = [Fence(f"f{i}", FenceKind.ZONE, shapely.box(0, 0, 1 + i, 1 + i)) for i in range(3)]
    fence_set = FenceSet(fences, version=1)
    lon = np.array([2.5, np.nan, 0.5, 50.0])
    lat = np.array([2.5, 0.5, 0.5, 50.0])
    rows, found = fence_set.contains(lon, lat, np.zeros(4, np.int32))
    assert rows.tolist() == [0, 2, 2, 2]
    assert found.tolist() == [2, 0, 1, 2]


def test_a_province_sized_polygon_beside_small_fences_is_refined_only_along_its_outline() -> None:
    province = shapely.Polygon([(110, 25), (120, 26), (119, 35), (111, 33)])
    small = [
        Fence(f"s{i}", FenceKind.HOTSPOT, shapely.Point(110 + i * 0.1, 30), radius_m=60.0)
        for i in range(50)
    ]
    fence_set = FenceSet([Fence("p", FenceKind.ALLOWED_AREA, province), *small], version=1)
    assert fence_set.grid.cell_deg < 10.0 / 512
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(109, 121, 50_000), rng.uniform(24, 36, 50_000)
    rows, found = fence_set.contains(lon, lat, np.zeros(len(lon), np.int32))
    expected = np.flatnonzero(shapely.contains_xy(province, lon, lat))
    assert np.array_equal(rows[found == 0], expected)
    # Its interior is listed as whole blocks, so few of its points need the exact test.
    grid = fence_set.grid
    mine = grid.entry_fence == 0
    assert (grid.entry_touched[mine] == np.uint64(2**64 - 1)).mean() > 0.9
    assert grid.entry_boundary[mine].any()


def test_a_segment_through_a_small_fence_is_a_crossing_when_both_fixes_are_outside() -> None:
    spot = Fence("pawn", FenceKind.HOTSPOT, shapely.Point(116.4, 39.9), radius_m=50.0)
    fence_set = FenceSet([spot], version=1)
    west, east = destination(116.4, 39.9, 270, 200), destination(116.4, 39.9, 90, 200)
    north = destination(116.4, 39.9, 0, 200)
    lon0 = np.array([west[0], west[0], 116.4])
    lat0 = np.array([west[1], west[1], 39.9])
    lon1 = np.array([east[0], north[0], east[0]])
    lat1 = np.array([east[1], north[1], east[1]])
    rows, found = fence_set.crossings(lon0, lat0, lon1, lat1, np.zeros(3, np.int32))
    assert rows.tolist() == [0]  # row 1 passes beside it, row 2 starts inside
    assert found.tolist() == [0]


def test_haversine_of_a_destination_point_is_its_distance() -> None:
    lon, lat = destination(116.4, 39.9, 33, 1234.5)
    assert float(haversine_m(116.4, 39.9, lon, lat)) == pytest.approx(1234.5, abs=1e-6)


def test_duplicate_fence_ids_in_a_set_are_refused() -> None:
    square = shapely.box(0, 0, 1, 1)
    with pytest.raises(ValueError, match="unique"):
        FenceSet([Fence("a", FenceKind.ZONE, square), Fence("a", FenceKind.ZONE, square)], 1)
