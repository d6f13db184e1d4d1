"""Vectorized encode of many 0x0200 frames at once: the mirror of `batch.decode_location_frames`.

Load generators and simulators produce hundreds of thousands of reports per second; building each
frame with the scalar encoder would make them the bottleneck. Every frame equals what
`encode_frame(LocationReport(...))` gives for the same values (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ingest.jt808.fields import LOCAL_OFFSET_MS
from ingest.jt808.ids import Edition

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def terminal_bytes(terminals: Sequence[str], edition: Edition) -> U8:
    """BCD ids as an (n, 6) or (n, 10) array, digits left-padded with zeros."""
    width = 10 if edition is Edition.V2019 else 6
    raw = b"".join(bytes.fromhex(t.rjust(2 * width, "0")) for t in terminals)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(terminals), width)


def _put(matrix: U8, column: int, values: npt.ArrayLike, width: int) -> None:
    v = np.asarray(values, dtype=np.uint64)
    for k in range(width):
        shift = np.uint64(8 * (width - 1 - k))
        matrix[:, column + k] = ((v >> shift) & np.uint64(0xFF)).astype(np.uint8)


def _bcd_local_times(time_ms: I64) -> U8:
    """Epoch ms UTC → (n, 6) BCD YYMMDDhhmmss in GMT+8 (years 2000-2099)."""
    local_s = (np.asarray(time_ms, dtype=np.int64) + LOCAL_OFFSET_MS) // 1000
    days, rem = np.divmod(local_s, 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    if len(year) and (year.min() < 2000 or year.max() > 2099):
        raise ValueError("times must fall in the years 2000-2099 (GMT+8)")
    hour, rem = np.divmod(rem, 3600)
    minute, second = np.divmod(rem, 60)
    parts = np.stack([year % 100, month, day, hour, minute, second], axis=1)
    bcd: U8 = ((parts // 10) * 16 + parts % 10).astype(np.uint8)
    return bcd


def encode_location_frames(
    *,
    terminals: U8,
    edition: Edition,
    serial: npt.ArrayLike,
    alarm: npt.ArrayLike,
    status: npt.ArrayLike,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    time_ms: npt.ArrayLike,
    speed_kmh: npt.ArrayLike = 0.0,
    course: npt.ArrayLike = 0,
    altitude_m: npt.ArrayLike = 0,
    items: Sequence[tuple[int, int, npt.ArrayLike]] = (),
    protocol_version: int = 1,
) -> list[bytes]:
    """One frame per row. `terminals` comes from `terminal_bytes` (one row per frame);
    `items` are fixed-width extra items (id, width in bytes, values per row).
    South/west bits are set from the signs of lat/lon, as `LocationReport.at` does."""
    n = len(terminals)
    v2019 = edition is Edition.V2019
    head = 17 if v2019 else 12
    body = 28 + sum(2 + w for _, w, _ in items)
    m = np.zeros((n, head + body + 1), dtype=np.uint8)
    m[:, 0], m[:, 1] = 0x02, 0x00
    _put(m, 2, body | (0x4000 if v2019 else 0), 2)
    if v2019:
        m[:, 4] = protocol_version
        m[:, 5:15] = terminals
        _put(m, 15, serial, 2)
    else:
        m[:, 4:10] = terminals
        _put(m, 10, serial, 2)
    lat_a = np.broadcast_to(np.asarray(lat, dtype=np.float64), (n,))
    lon_a = np.broadcast_to(np.asarray(lon, dtype=np.float64), (n,))
    st = np.broadcast_to(np.asarray(status, dtype=np.uint64), (n,)) & np.uint64(
        ~0b1100 & 0xFFFFFFFF
    )
    st = (
        st
        | np.where(lat_a < 0, 4, 0).astype(np.uint64)
        | np.where(lon_a < 0, 8, 0).astype(np.uint64)
    )
    b = head
    _put(m, b, np.broadcast_to(np.asarray(alarm, dtype=np.uint64), (n,)), 4)
    _put(m, b + 4, st, 4)
    _put(m, b + 8, np.round(np.abs(lat_a) * 1e6).astype(np.uint64), 4)
    _put(m, b + 12, np.round(np.abs(lon_a) * 1e6).astype(np.uint64), 4)
    _put(m, b + 16, np.broadcast_to(np.asarray(altitude_m, dtype=np.int64), (n,)), 2)
    speed = np.round(np.asarray(speed_kmh, dtype=np.float64) * 10).astype(np.int64)
    _put(m, b + 18, np.broadcast_to(speed, (n,)), 2)
    _put(m, b + 20, np.broadcast_to(np.asarray(course, dtype=np.int64), (n,)), 2)
    m[:, b + 22 : b + 28] = _bcd_local_times(np.broadcast_to(np.asarray(time_ms), (n,)))
    p = b + 28
    for item_id, width, values in items:
        m[:, p] = item_id
        m[:, p + 1] = width
        _put(m, p + 2, np.broadcast_to(np.asarray(values, dtype=np.uint64), (n,)), width)
        p += 2 + width
    m[:, -1] = np.bitwise_xor.reduce(m[:, :-1], axis=1)
    return _escape_rows(m)


def encode_general_responses(
    *,
    msg_id: int,
    terminals: U8,
    edition: Edition,
    serial: npt.ArrayLike,
    answer_serial: npt.ArrayLike,
    answer_id: npt.ArrayLike,
    result: npt.ArrayLike = 0,
    protocol_version: npt.ArrayLike = 1,
) -> list[bytes]:
    """Many 0x8001 (or 0x0001) frames at once: the gateway acknowledges reports in batches.

    Equal to `encode_frame(PlatformGeneralResponse(answer_serial, answer_id, result), ...)`
    row by row (tested)."""
    n = len(terminals)
    v2019 = edition is Edition.V2019
    head = 17 if v2019 else 12
    m = np.zeros((n, head + 5 + 1), dtype=np.uint8)
    _put(m, 0, np.full(n, msg_id), 2)
    _put(m, 2, np.full(n, 5 | (0x4000 if v2019 else 0)), 2)
    if v2019:
        m[:, 4] = np.broadcast_to(np.asarray(protocol_version, dtype=np.uint8), (n,))
        m[:, 5:15] = terminals
    else:
        m[:, 4:10] = terminals
    _put(m, head - 2, np.broadcast_to(np.asarray(serial, dtype=np.int64), (n,)), 2)
    _put(m, head, np.broadcast_to(np.asarray(answer_serial, dtype=np.int64), (n,)), 2)
    _put(m, head + 2, np.broadcast_to(np.asarray(answer_id, dtype=np.int64), (n,)), 2)
    m[:, head + 4] = np.broadcast_to(np.asarray(result, dtype=np.uint8), (n,))
    m[:, -1] = np.bitwise_xor.reduce(m[:, :-1], axis=1)
    return _escape_rows(m)


def _escape_rows(m: U8) -> list[bytes]:
    """Rows → flagged, escaped frames (0x7d → 7d 01, 0x7e → 7d 02)."""
    n, width = m.shape
    framed = np.empty((n, width + 2), dtype=np.uint8)
    framed[:, 0] = framed[:, -1] = 0x7E
    framed[:, 1:-1] = m
    flat = framed.reshape(-1)
    inner = np.zeros((n, width + 2), dtype=bool)
    inner[:, 1:-1] = (m == 0x7D) | (m == 0x7E)
    at = np.flatnonzero(inner.reshape(-1))
    if at.size:
        values = flat[at]
        flat = np.insert(flat, at + 1, np.where(values == 0x7E, 0x02, 0x01).astype(np.uint8))
        flat[at + np.arange(at.size)] = 0x7D
    row_len = (width + 2) + np.bincount(at // (width + 2), minlength=n)
    row_end = np.cumsum(row_len)
    data = flat.tobytes()
    return [data[s:e] for s, e in zip((row_end - row_len).tolist(), row_end.tolist(), strict=True)]
