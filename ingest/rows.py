"""Location reports as position rows: the vectorized columns of many 0x0200 frames, or the few
scalar-decoded reports of a 0x0704, into one `PositionBatch` with its flags."""

from __future__ import annotations

from typing import Any

import numpy as np

from ingest.jt808 import LocationReport, Status
from positions import Flag, PositionBatch


def columns_to_batch(
    cols: Any, rows: np.ndarray[Any, Any], device: np.ndarray[Any, Any], recv_ms: int, flags: int
) -> PositionBatch:
    """Rows `rows` of `decode_location_frames` columns, owned by `device` (one per row)."""
    status = cols.status[rows]
    lat_e6, lon_e6 = cols.lat_e6[rows], cols.lon_e6[rows]
    flag = np.full(len(rows), flags, dtype=np.uint16)
    flag[(status & int(Status.POSITIONED)) == 0] |= int(Flag.INVALID_FIX)
    flag[(lat_e6 == 0) & (lon_e6 == 0)] |= int(Flag.INVALID_FIX)
    flag[~cols.time_valid[rows]] |= int(Flag.BAD_TIME)
    lat = lat_e6 / 1e6
    lon = lon_e6 / 1e6
    return PositionBatch(
        device=device.astype(np.int32),
        time_ms=cols.time_ms[rows],
        recv_ms=np.full(len(rows), recv_ms, dtype=np.int64),
        device_time_ms=cols.time_ms[rows],
        lon=np.where(status & int(Status.WEST), -lon, lon),
        lat=np.where(status & int(Status.SOUTH), -lat, lat),
        speed_kmh=(cols.speed_dkmh[rows] / 10).astype(np.float32),
        course=cols.course[rows].astype(np.int16),
        altitude_m=cols.altitude_m[rows].astype(np.int32),
        alarm=cols.alarm[rows],
        status=status,
        flags=flag,
    )


def reports_to_batch(
    reports: tuple[LocationReport, ...], device: int, recv_ms: int, flags: int
) -> PositionBatch:
    """Scalar-decoded reports (0x0704 items) as batch rows; their count is small."""
    n = len(reports)
    flag = np.full(n, flags, dtype=np.uint16)
    times = np.zeros(n, dtype=np.int64)
    for i, r in enumerate(reports):
        t = r.time_ms
        if t is None:
            flag[i] |= int(Flag.BAD_TIME)
        else:
            times[i] = t
        if not r.positioned or (r.lat_e6 == 0 and r.lon_e6 == 0):
            flag[i] |= int(Flag.INVALID_FIX)
    return PositionBatch(
        device=np.full(n, device, dtype=np.int32),
        time_ms=times,
        recv_ms=np.full(n, recv_ms, dtype=np.int64),
        device_time_ms=times,
        lon=np.array([r.lon for r in reports], dtype=np.float64),
        lat=np.array([r.lat for r in reports], dtype=np.float64),
        speed_kmh=np.array([r.speed_kmh for r in reports], dtype=np.float32),
        course=np.array([r.course for r in reports], dtype=np.int16),
        altitude_m=np.array([r.altitude_m for r in reports], dtype=np.int32),
        alarm=np.array([r.alarm for r in reports], dtype=np.uint32),
        status=np.array([r.status for r in reports], dtype=np.uint32),
        flags=flag,
    )
