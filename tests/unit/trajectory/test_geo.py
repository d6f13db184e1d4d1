"""Distances: the fast local one agrees with haversine where the rules use it."""

from __future__ import annotations

import numpy as np

from trajectory.geo import haversine_m, haversine_scalar_m, local_m, local_scalar_m, local_within_m


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


def test_local_within_m_is_local_m_compared_to_the_radius() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    lon1, lat1 = rng.uniform(-180, 180, n), rng.uniform(-89, 89, n)
    # Offsets from centimetres to kilometres, many right at the radius.
    scale = 10.0 ** rng.uniform(-7, -1, n)
    lon2 = lon1 + rng.normal(0, 1, n) * scale
    lat2 = lat1 + rng.normal(0, 1, n) * scale
    for radius in (0.0, 1.0, 50.0, 100.0, 5_000.0):
        exact = local_m(lon1, lat1, lon2, lat2) <= radius
        assert (local_within_m(lon1, lat1, lon2, lat2, radius) == exact).all()
    at = local_m(lon1, lat1, lon2, lat2)
    for radius in at[:50].tolist():  # exactly on the boundary
        exact = at <= radius
        assert (local_within_m(lon1, lat1, lon2, lat2, radius) == exact).all()
