"""A track's answer as JSON text, written a slice of rows at a time.

A 100,000-point track is about 33 MB of JSON. Built as one dict per row and encoded by one
`json.dumps` call, it costs about 0.8 s of CPU, and the `dumps` call alone holds the
interpreter for hundreds of milliseconds: every other thread of the process waits, the
gateway's acknowledgements too when the API runs beside it. Here each field's text is made a
column at a time by C-level `map` calls (the `repr` of floats and ints and the json module's
own string encoder, exactly what `json.dumps` writes), each row's text by one `%` format, and
the answer is written in slices of `ROWS_PER_CHUNK` rows: no single call holds the interpreter
for more than a few milliseconds, and the whole text never exists at once. The bytes are those
of `json_bytes(positions_json(batch))` (tests/property/test_track_json.py compares them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from api.geocode import Place
from api.views import flag_names, position_json, track_arrays, track_places
from positions import PositionBatch

ROWS_PER_CHUNK = 1024  # about 330 kB of text and a few ms of CPU per slice

_LOCAL_MS = 8 * 3_600_000  # the trackers' GMT+8, as `api.views.iso` shows times
_BCD_FIRST_MS = 946_656_000_000  # the time `api.views.track_arrays` puts in unfit rows
_HOURS_MINUTES = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_SECONDS = [f"{s:02d}" for s in range(60)]
_MILLISECONDS = [""] + [f".{ms:03d}" for ms in range(1, 1000)]  # `iso` leaves out .000
_BOOL = {True: "true", False: "false"}


def _dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _numbers(column: npt.NDArray[Any]) -> list[str]:
    """Each number's JSON text as `json.dumps` writes it (`repr`): orjson writes a whole
    array's in one call, the same shortest round-trip digits; only for floats below 1e-4 does
    it spell them otherwise (0.00001 for 1e-05), so those take `repr`."""
    texts: list[str] = (
        orjson.dumps(column, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode().split(",")
    )
    if column.dtype.kind == "f":
        small = np.abs(column) < 1e-4
        small &= column != 0
        for row in np.flatnonzero(small).tolist():
            texts[row] = repr(float(column[row]))
    return texts


def _times(time_ms: npt.NDArray[np.int64], with_ms: bool) -> list[Any]:
    """Pieces of each time's ISO text in GMT+8 (`api.views.iso`: the date, hours and
    minutes, seconds, milliseconds unless whole, then the offset), from small tables: the
    date is written once per day by numpy, the rest is looked up."""
    local = time_ms + _LOCAL_MS
    seconds = local // 1000
    days, of_day = np.divmod(seconds, 86_400)
    unique, day_of_row = np.unique(days, return_inverse=True)
    dates = [f"{d}T" for d in np.datetime_as_string(unique.astype("datetime64[D]")).tolist()]
    pieces: list[Any] = [
        map(dates.__getitem__, day_of_row.tolist()),
        map(_HOURS_MINUTES.__getitem__, (of_day // 60).tolist()),
        map(_SECONDS.__getitem__, (of_day % 60).tolist()),
    ]
    if with_ms:
        pieces.append(map(_MILLISECONDS.__getitem__, (local - seconds * 1000).tolist()))
    return pieces


def check_encodable(batch: PositionBatch) -> None:
    """Raises ValueError, as `json_bytes` would, for a coordinate or speed JSON cannot hold
    (NaN, infinity): checked before the first byte of an answer is sent."""
    for column in (batch.lat, batch.lon, batch.speed_kmh):
        if not np.isfinite(column).all():
            raise ValueError("Out of range float values are not JSON compliant")


def rows_text(batch: PositionBatch, place: list[Place] | None = None) -> str:
    """The rows' JSON objects joined by commas (the answer without its brackets)."""
    n = len(batch)
    if not n:
        return ""
    c = track_arrays(batch, place)
    flags = batch.flags.tolist()
    flag_texts = {f: _dumps(flag_names(f)) for f in set(flags)}
    by_id = dict(zip(map(id, c.place), c.place, strict=True))
    places = {key: "null" if p is None else _dumps(p) for key, p in by_id.items()}
    fits = c.fits
    fix_time = np.where(fits, batch.time_ms, _BCD_FIRST_MS)
    received = np.where(fits, batch.recv_ms, 0)
    device_time = np.where(fits, batch.device_time_ms, 0)
    fields: list[tuple[str, list[Any]]] = [
        ('{"lat":', [_numbers(c.lat)]),
        (',"lon":', [_numbers(c.lon)]),
        (',"altitude_m":', [_numbers(batch.altitude_m)]),
        (',"speed_kmh":', [_numbers(c.speed_kmh)]),
        (',"course":', [_numbers(batch.course)]),
        (',"time":"', _times(fix_time, with_ms=False)),
        ('+08:00","alarm":', [_numbers(batch.alarm)]),
        (',"status":', [_numbers(c.status)]),
        (',"device_time":"', _times(device_time, with_ms=True)),
        ('+08:00","received":"', _times(received, with_ms=True)),
        ('+08:00","flags":', [map(flag_texts.__getitem__, flags)]),
        (',"valid":', [map(_BOOL.__getitem__, c.valid.tolist())]),
        (',"place":', [map(places.__getitem__, map(id, c.place))]),
    ]
    pieces: list[Any] = []
    for key, values in fields:
        pieces += [repeat(key, n), *values]
    pieces.append(repeat("}", n))
    rows = list(map("".join, zip(*pieces, strict=True)))
    for row in np.flatnonzero(~c.fits).tolist():  # times no tracker sends
        out = position_json(batch, row, bool(c.valid[row]))
        out["place"] = c.place[row]
        rows[row] = _dumps(out)
    return ",".join(rows)


def track_chunks(batch: PositionBatch, rows: int = ROWS_PER_CHUNK) -> Iterator[bytes]:
    """The answer `[...]` in pieces of `rows` positions (the first piece carries `[`, the
    last `]`). Raises ValueError at once, before any piece, for a value JSON cannot hold."""
    check_encodable(batch)
    n = len(batch)
    if not n:
        return iter([b"[]"])

    def pieces() -> Iterator[bytes]:
        place = track_places(batch)  # with the first piece, on the thread that writes it
        for start in range(0, n, rows):
            end = min(n, start + rows)
            text = rows_text(batch.take(np.arange(start, end)), place[start:end])
            yield (("[" if start == 0 else ",") + text + ("]" if end == n else "")).encode()

    return pieces()


def track_bytes(batch: PositionBatch) -> bytes:
    """The whole answer at once: the same bytes as `track_chunks` joined."""
    return b"".join(track_chunks(batch))
