"""Distances: the fast local one agrees with haversine where the rules use it."""

from __future__ import annotations

import numpy as np

from trajectory.geo import haversine_m, haversine_scalar_m, local_m, local_scalar_m


def test_local_distance_is_within_a_tenth_of_a_percent_of_haversine_up_to_50_km() -> None:
    rng = np.random.default_rng(3)
    lon1, lat1 = rng.uniform(73, 135, 1000), rng.uniform(18, 53, 1000)
    bearing, dist = rng.uniform(0, 2 * np.pi, 1000), rng.uniform(10, 50_000, 1000)
    lon2 = lon1 + dist * np.sin(bearing) / (111_195 * np.cos(np.radians(lat1)))
    lat2 = lat1 + dist * np.cos(bearing) / 111_195
    exact = haversine_m(lon1, lat1, lon2, lat2)
    assert np.all(np.abs(local_m(lon1, lat1, lon2, lat2) - exact) <= 1e-3 * exact)


def test_scalar_and_vector_forms_agree() -> None:
    a = (121.4, 31.2, 121.5, 31.3)
    assert abs(haversine_scalar_m(*a) - float(haversine_m(*a))) < 1e-6
    assert abs(local_scalar_m(*a) - float(local_m(*a))) < 1e-6
