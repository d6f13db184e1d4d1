"""WGS-84 <-> GCJ-02 <-> BD-09 conversions, vectorized.

Chinese map services draw in GCJ-02 (AMap, Tencent) or BD-09 (Baidu); engines work in WGS-84.
The forward formulas are the published ones; the inverses have no closed form, so they iterate
the forward formula until the round trip agrees to about a millimetre. Points outside mainland
China's bounding box are not shifted by GCJ-02, as the services themselves do.
"""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_A_M = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON_DEG = 0.0065
_BD_DLAT_DEG = 0.006
_INVERSE_TOLERANCE_DEG = 1e-10  # ~0.01 mm
_INVERSE_MAX_STEPS = 30


class Crs(enum.StrEnum):
    """Coordinate systems fences may be drawn in."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"

    @classmethod
    def parse(cls, text: str) -> Crs:
        """Accepts `wgs84`, `WGS-84`, `gcj02`, `GCJ-02`, `bd09`, `BD-09`, `EPSG:4326`."""
        key = text.strip().lower().replace("-", "").replace("_", "")
        if key in ("epsg:4326", "crs84"):
            return cls.WGS84
        try:
            return cls(key)
        except ValueError:
            raise ValueError(f"unknown crs {text!r} (expected wgs84, gcj02 or bd09)") from None


def _outside_china(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _shift_deg(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset (dlon, dlat) in degrees at a WGS-84 point."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat_deg = (dlat * 180.0) / ((_A_M * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon_deg = (dlon * 180.0) / (_A_M / sqrt_magic * np.cos(rad_lat) * np.pi)
    outside = _outside_china(lon, lat)
    return np.where(outside, 0.0, dlon_deg), np.where(outside, 0.0, dlat_deg)


def _as_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a, lat_a = _as_arrays(lon, lat)
    dlon, dlat = _shift_deg(lon_a, lat_a)
    return lon_a + dlon, lat_a + dlat


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Inverse by fixed-point iteration: the shift varies slowly, so it converges in a few steps."""
    lon_g, lat_g = _as_arrays(lon, lat)
    lon_w, lat_w = lon_g.copy(), lat_g.copy()
    for _ in range(_INVERSE_MAX_STEPS):
        fwd_lon, fwd_lat = wgs84_to_gcj02(lon_w, lat_w)
        err_lon, err_lat = fwd_lon - lon_g, fwd_lat - lat_g
        lon_w, lat_w = lon_w - err_lon, lat_w - err_lat
        if np.all(np.abs(err_lon) < _INVERSE_TOLERANCE_DEG) and np.all(
            np.abs(err_lat) < _INVERSE_TOLERANCE_DEG
        ):
            break
    return lon_w, lat_w


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x, y = _as_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + _BD_DLON_DEG, z * np.sin(theta) + _BD_DLAT_DEG


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The published closed-form inverse, then refined so a round trip closes to ~1 mm."""
    lon_b, lat_b = _as_arrays(lon, lat)
    x, y = lon_b - _BD_DLON_DEG, lat_b - _BD_DLAT_DEG
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    lon_g, lat_g = z * np.cos(theta), z * np.sin(theta)
    for _ in range(_INVERSE_MAX_STEPS):
        fwd_lon, fwd_lat = gcj02_to_bd09(lon_g, lat_g)
        err_lon, err_lat = fwd_lon - lon_b, fwd_lat - lat_b
        lon_g, lat_g = lon_g - err_lon, lat_g - err_lat
        if np.all(np.abs(err_lon) < _INVERSE_TOLERANCE_DEG) and np.all(
            np.abs(err_lat) < _INVERSE_TOLERANCE_DEG
        ):
            break
    return lon_g, lat_g


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: Crs) -> tuple[FloatArray, FloatArray]:
    """Converts coordinates drawn in `crs` to WGS-84."""
    if crs is Crs.GCJ02:
        return gcj02_to_wgs84(lon, lat)
    if crs is Crs.BD09:
        return bd09_to_wgs84(lon, lat)
    return _as_arrays(lon, lat)


def from_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: Crs) -> tuple[FloatArray, FloatArray]:
    """Converts WGS-84 coordinates to `crs` (for showing fences on a Chinese map service)."""
    if crs is Crs.GCJ02:
        return wgs84_to_gcj02(lon, lat)
    if crs is Crs.BD09:
        return wgs84_to_bd09(lon, lat)
    return _as_arrays(lon, lat)
