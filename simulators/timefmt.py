"""Device time is GMT+8: the files carry ISO 8601 with a +08:00 offset, arrays carry UTC ms."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

TZ_OFFSET_MS = 8 * 3600 * 1000
TZ = dt.timezone(dt.timedelta(hours=8))
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def local_midnight_ms(day: dt.date) -> int:
    """Epoch ms of 00:00 at +08:00 on `day`."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=TZ).timestamp() * 1000)


def iso_local(time_ms: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """ISO 8601 strings at +08:00, whole seconds (JT808 time has a one-second resolution)."""
    t = np.asarray(time_ms, dtype=np.int64) + TZ_OFFSET_MS
    text = np.datetime_as_string(t.astype("datetime64[ms]"), unit="s")
    return np.char.add(text, "+08:00")


def iso_local_ms(time_ms: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """ISO 8601 strings at +08:00 with milliseconds (receive times are the platform's own)."""
    t = np.asarray(time_ms, dtype=np.int64) + TZ_OFFSET_MS
    text = np.datetime_as_string(t.astype("datetime64[ms]"), unit="ms")
    return np.char.add(text, "+08:00")


def iso_one(time_ms: int) -> str:
    return str(iso_local(np.array([time_ms]))[0])


def parse_time_ms(text: str) -> int:
    """ISO 8601 with an offset, or epoch seconds, to epoch ms; raises ValueError otherwise."""
    stripped = text.strip()
    try:
        return round(float(stripped) * 1000)
    except ValueError:
        pass
    parsed = dt.datetime.fromisoformat(stripped)
    if parsed.tzinfo is None:
        raise ValueError(f"time {stripped!r} has no UTC offset")
    return round(parsed.timestamp() * 1000)
