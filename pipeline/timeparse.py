"""Fix times from text columns to int64 epoch milliseconds, vectorized for the usual shapes.

ISO 8601 `YYYY-MM-DDTHH:MM:SS[.fff](+HH:MM|Z)` is parsed as digit arithmetic over a byte matrix;
any other shape (epoch seconds, other fractions, offsets without a colon) goes through the
standard library one row at a time. Rows that parse neither way are reported, not raised.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt


def _days_from_civil(
    y: npt.NDArray[np.int64], m: npt.NDArray[np.int64], d: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic, no tables)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146097 + doe - 719468, dtype=np.int64)


def parse_times_ms(
    text: npt.NDArray[np.bytes_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Returns (epoch ms, ok) for a column of byte strings."""
    n = len(text)
    out = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    if n == 0:
        return out, ok
    width = text.dtype.itemsize
    if width < 30:
        text = text.astype("S30")
        width = 30
    ch = np.ascontiguousarray(text).view(np.uint8).reshape(n, width)
    # One column of bytes at a time: contiguous 1-d work, far cheaper than 2-d slices.
    col = [ch[:, k].astype(np.int32) for k in range(30)]

    def is_(k: int, byte: int) -> npt.NDArray[np.bool_]:
        same: npt.NDArray[np.bool_] = col[k] == byte
        return same

    def num(*ks: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        value = np.zeros(n, np.int32)
        good = np.ones(n, np.bool_)
        for k in ks:
            digit = col[k] - 48
            good &= (digit >= 0) & (digit <= 9)
            value = value * 10 + digit
        return value, good

    y, g1 = num(0, 1, 2, 3)
    mo, g2 = num(5, 6)
    d, g3 = num(8, 9)
    hh, g4 = num(11, 12)
    mi, g5 = num(14, 15)
    ss, g6 = num(17, 18)
    fast = g1 & g2 & g3 & g4 & g5 & g6 & is_(4, 45) & is_(7, 45) & is_(13, 58) & is_(16, 58)
    fast &= is_(10, 84) | is_(10, 32)
    has_frac = is_(19, 46)
    frac, frac_ok = num(20, 21, 22)

    def offset(at: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        """Minutes east of UTC for an offset starting at byte `at`, and whether it parsed."""
        hours, g_h = num(at + 1, at + 2)
        minutes, g_m = num(at + 4, at + 5)
        signed = (is_(at, 43) | is_(at, 45)) & is_(at + 3, 58) & g_h & g_m & is_(at + 6, 0)
        zulu = is_(at, 90) & is_(at + 1, 0)
        value = np.where(is_(at, 45), -(hours * 60 + minutes), hours * 60 + minutes)
        return np.where(zulu, 0, value), signed | zulu

    plain_min, plain_ok = offset(19)
    frac_min, frac_tz_ok = offset(23)
    offset_min = np.where(has_frac, frac_min, plain_min)
    fast &= np.where(has_frac, frac_ok & frac_tz_ok, plain_ok)
    month_days = np.array([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int32)
    fast &= (mo >= 1) & (mo <= 12) & (d >= 1) & (hh <= 23) & (mi <= 59) & (ss <= 59)
    fast &= d <= month_days[np.clip(mo - 1, 0, 11)]
    days = _days_from_civil(
        y.astype(np.int64), np.clip(mo, 1, 12).astype(np.int64), d.astype(np.int64)
    )
    seconds = days * 86400 + (hh * 3600 + mi * 60 + ss - offset_min * 60).astype(np.int64)
    out = np.where(fast, seconds * 1000 + np.where(has_frac, frac, 0), 0)
    ok = fast.copy()
    for i in np.flatnonzero(~fast):
        value = _parse_one(bytes(text[i]))
        if value is not None:
            out[i] = value
            ok[i] = True
    return out.astype(np.int64), ok


def _parse_one(raw: bytes) -> int | None:
    """Epoch seconds or any ISO 8601 form the standard library accepts (offset required)."""
    s = raw.decode("utf-8", "replace").strip()
    if not s:
        return None
    try:
        return round(float(s) * 1000)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(s)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return round((stamp - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
