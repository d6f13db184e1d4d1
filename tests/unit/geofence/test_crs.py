"""GCJ-02 / BD-09 conversions against published reference points, and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from geofence.crs import (
    Crs,
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geofence.geodesy import haversine_m

# Published outputs of the well-known formulas for the input (116.404, 39.915).
WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)
INPUT = (116.404, 39.915)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(haversine_m(a[0], a[1], b[0], b[1]))


def test_wgs84_to_gcj02_matches_the_reference_point() -> None:
    lon, lat = wgs84_to_gcj02(*INPUT)
    assert metres((float(lon), float(lat)), WGS84_TO_GCJ02) < 0.01


def test_gcj02_to_wgs84_inverts_the_reference_point_within_a_metre() -> None:
    lon, lat = gcj02_to_wgs84(*WGS84_TO_GCJ02)
    assert metres((float(lon), float(lat)), INPUT) < 1.0


def test_gcj02_to_bd09_matches_the_reference_point() -> None:
    lon, lat = gcj02_to_bd09(*INPUT)
    assert metres((float(lon), float(lat)), GCJ02_TO_BD09) < 0.01


def test_bd09_to_gcj02_matches_the_reference_point_within_a_metre() -> None:
    lon, lat = bd09_to_gcj02(*INPUT)
    assert metres((float(lon), float(lat)), BD09_TO_GCJ02) < 1.0


def test_round_trips_close_within_a_centimetre_across_china() -> None:
    rng = np.random.default_rng(5)
    lon = rng.uniform(75.0, 134.0, 2000)
    lat = rng.uniform(18.0, 53.0, 2000)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert haversine_m(lon, lat, back_lon, back_lat).max() < 0.01
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert haversine_m(lon, lat, back_lon, back_lat).max() < 0.01


def test_gcj02_shifts_points_in_china_by_hundreds_of_metres_but_not_abroad() -> None:
    shifted = wgs84_to_gcj02(*INPUT)
    assert 100.0 < metres(INPUT, (float(shifted[0]), float(shifted[1]))) < 1000.0
    paris = (2.35, 48.85)
    lon, lat = wgs84_to_gcj02(*paris)
    assert (float(lon), float(lat)) == paris


def test_to_wgs84_dispatches_on_the_named_system() -> None:
    lon, lat = to_wgs84(*WGS84_TO_GCJ02, Crs.parse("GCJ-02"))
    assert metres((float(lon), float(lat)), INPUT) < 1.0
    assert to_wgs84(1.0, 2.0, Crs.WGS84) == (1.0, 2.0)


def test_an_unknown_crs_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown crs 'mercator'"):
        Crs.parse("mercator")
