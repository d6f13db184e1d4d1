"""Great-circle distances on the mean-radius sphere, shared by every engine (L0: numpy only).

Longitude before latitude, degrees in, metres out; the array form broadcasts like a ufunc,
the scalar form serves sequential loops and oracles without numpy overhead.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), the usual haversine sphere
M_PER_DEG_LAT = math.pi / 180.0 * EARTH_RADIUS_M

FloatArray = npt.NDArray[np.float64]


def haversine_m(
    lon1_deg: npt.ArrayLike,
    lat1_deg: npt.ArrayLike,
    lon2_deg: npt.ArrayLike,
    lat2_deg: npt.ArrayLike,
) -> FloatArray:
    """Distance in metres between point pairs, element-wise.

    The textbook formula, evaluated in place in four arrays instead of a dozen temporaries
    (every rule calls it on whole batches); the operations and their order are unchanged, so
    the results are the same to the bit."""
    phi1 = np.radians(np.asarray(lat1_deg, dtype=np.float64))
    phi2 = np.radians(np.asarray(lat2_deg, dtype=np.float64))
    dlmb = np.asarray(np.asarray(lon2_deg, dtype=np.float64) - np.asarray(lon1_deg, np.float64))
    if dlmb.ndim == 0 or phi1.shape != dlmb.shape or phi2.shape != dlmb.shape:
        dlmb = np.radians(dlmb)
        a = np.sin((phi2 - phi1) * 0.5) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb * 0.5) ** 2
        return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0))))
    np.radians(dlmb, out=dlmb)
    a = np.subtract(phi2, phi1)
    a *= 0.5
    np.sin(a, out=a)
    np.square(a, out=a)
    np.cos(phi1, out=phi1)
    np.cos(phi2, out=phi2)
    phi1 *= phi2
    dlmb *= 0.5
    np.sin(dlmb, out=dlmb)
    np.square(dlmb, out=dlmb)
    phi1 *= dlmb
    a += phi1
    np.minimum(a, 1.0, out=a)
    np.sqrt(a, out=a)
    np.arcsin(a, out=a)
    a *= 2.0 * EARTH_RADIUS_M
    return a


def haversine_scalar_m(lon1_deg: float, lat1_deg: float, lon2_deg: float, lat2_deg: float) -> float:
    """The same distance for one pair, in plain floats."""
    phi1, phi2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dlmb = math.radians(lon2_deg - lon1_deg)
    a = (
        math.sin((phi2 - phi1) * 0.5) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb * 0.5) ** 2
    )
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(a, 1.0)))
