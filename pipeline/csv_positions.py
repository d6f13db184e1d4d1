"""POSITIONS.csv (contracts section 3) to columns, in bulk.

The fast path is Arrow's multi-threaded CSV reader; the next hands the file to numpy's C
tokenizer with one typed column per field used; only when both fail (a malformed row somewhere)
does a row-by-row pass find every bad row, report it by line and field, and keep the good ones.
Bad rows never stop the rest of the run.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pa_csv

from pipeline.timeparse import parse_times_ms
from positions import DeviceIndex

REQUIRED = ("device_id", "time", "lat", "lon")
OPTIONAL = ("speed_kmh", "course", "alarm", "status")
# The receive time (contracts section 3): same formats as `time`; an empty value, or no column,
# means `time` stands in for it.
RECEIVED = "received"
_ID_WIDTH = 24  # a 2019 terminal id is 20 digits; longer ids take the careful path
_TIME_WIDTH = 32
HEAD_BYTES = 1 << 16  # enough for any header row and the start of the first row


class CsvFormatError(ValueError):
    """The file cannot be read at all (no header, a required column missing)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    reason: str

    def describe(self, source: str) -> str:
        return f"{source}:{self.line}: field {self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class CsvPositions:
    """Good rows in file order; `line` is each row's 1-based line number in the file.

    The bulk reader gives the ids as a dictionary (`device_names`, `device_codes`) and no line
    numbers (its rows are lines 2, 3, ... by construction): `device_id` and `line` are then
    built on first use, which replay never makes (a copy of every id and a line number per
    row, 15 MB on the benchmark's file, for nothing)."""

    ids: npt.NDArray[np.bytes_] | None  # per row, or None: device_names[device_codes]
    time_ms: npt.NDArray[np.int64]
    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    speed_kmh: npt.NDArray[np.float32]
    course: npt.NDArray[np.int16]
    alarm: npt.NDArray[np.uint32]
    status: npt.NDArray[np.uint32]
    lines: npt.NDArray[np.int64] | None  # None: lines 2, 3, ... in order
    errors: list[RowError] = field(default_factory=list)
    bulk: bool = True  # parsed by the bulk path (False: some row needed the careful one)
    # The reader's dictionary of ids when it has one: device_id == names[codes].
    device_names: npt.NDArray[np.bytes_] | None = None
    device_codes: npt.NDArray[np.int32] | None = None
    # Receive times when the file has a `received` column (None: it has none).
    recv_ms: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return len(self.time_ms)

    @property
    def device_id(self) -> npt.NDArray[np.bytes_]:
        """Each row's device id."""
        if self.ids is not None:
            return self.ids
        assert self.device_names is not None
        assert self.device_codes is not None
        return self.device_names[self.device_codes]

    @property
    def line(self) -> npt.NDArray[np.int64]:
        """Each row's 1-based line number in the file."""
        if self.lines is not None:
            return self.lines
        return np.arange(2, 2 + len(self), dtype=np.int64)

    def device_index(self, index: DeviceIndex) -> npt.NDArray[np.int32]:
        """Dense device indexes per row; through the dictionary (a few hundred ids) when the
        reader gave one, so the per-row ids are never hashed."""
        if self.device_names is None or self.device_codes is None:
            return device_indexes(self.device_id, index)
        return np.take(device_indexes(self.device_names, index), self.device_codes)


def read_positions_file(path: Path, source: str | None = None) -> CsvPositions:
    """The file at `path`, as `read_positions_csv` reads its bytes. Arrow reads a well-formed
    regular file from disk itself, while it parses (no copy of the whole file held in Python
    first); anything else (a pipe, a file another path must look at) is read as bytes, once.
    Raises OSError when the file cannot be read."""
    source = str(path) if source is None else source
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
        newline = head.find(b"\n")
        regular = stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
        if regular and newline >= 0 and head.find(b",", newline + 1) >= 0:
            used = _used_columns(head, newline, source)
            with pa.OSFile(str(path)) as stream:
                arrow = _arrow(stream, used)
            if arrow is not None:
                return arrow
            fh.seek(len(head))
        data = head + fh.read()
    return read_positions_csv(data, source)


def read_positions_csv(data: bytes, source: str = "positions.csv") -> CsvPositions:
    """Parses the whole file; raises CsvFormatError only when no row can be read."""
    newline = data.find(b"\n")
    used = _used_columns(data, newline, source)
    header = _header(data, newline)
    # No comma after the header: no row to read (the paths below say which lines are bad).
    if newline >= 0 and data.find(b",", newline + 1) >= 0:
        arrow = _arrow(data, used)
        if arrow is not None:
            return arrow
    body = data[newline + 1 :] if newline >= 0 else b""
    bulk = True
    try:
        table = _fast(data, body, header, used)
        line = np.arange(2, 2 + len(table), dtype=np.int64)
        errors: list[RowError] = []
        if body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1) != len(table):
            raise ValueError("blank or skipped lines: line numbers need the careful pass")
    except ValueError:
        bulk = False
        text = body.decode("utf-8", errors="replace")
        table, line, errors = _careful(text, header, used)
    return _columns(table, line, errors, bulk)


def _header(data: bytes, newline: int) -> list[str]:
    """The header row's column names, trimmed and lower-cased."""
    header_line = (data if newline < 0 else data[:newline]).decode("utf-8-sig", "replace")
    return [h.strip().lower() for h in next(csv.reader([header_line]), [])]


def _used_columns(data: bytes, newline: int, source: str) -> list[str]:
    """The contract's columns the header has, in the contract's order; raises CsvFormatError
    for no header or a required column missing."""
    header = _header(data, newline)
    if not header or header == [""]:
        raise CsvFormatError(f"{source}:1: field header: empty file or no header row")
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise CsvFormatError(f"{source}:1: field {missing[0]}: required column missing")
    return [name for name in (*REQUIRED, *OPTIONAL, RECEIVED) if name in header]


def _arrow(data: bytes | Any, used: list[str]) -> CsvPositions | None:
    """Arrow's multi-threaded C++ reader over the bytes or an Arrow file (read again from its
    start if need be): the fast path for a well-formed file. None when any row needs a closer
    look (then the numpy and row-by-row paths report it by line).

    Times are parsed by the reader itself (ISO 8601 with offset, to UTC milliseconds); a file
    of epoch seconds is read again with the time as text. Blank lines are rows to the reader
    (`ignore_empty_lines=False`), so one fails the read and row numbers stay line numbers."""
    table = _read_arrow(data, used, pa.timestamp("ms", tz="UTC"))
    if table is None:
        return None
    if any(table.column(name).null_count for name in used if name not in OPTIONAL):
        return None
    time_ms = _arrow_times(table, "time")
    if time_ms is None:
        return None
    recv_ms = None
    if RECEIVED in used:
        recv_ms = _arrow_times(table, RECEIVED, stand_in=time_ms)
        if recv_ms is None:
            return None
    ids = table.column("device_id").combine_chunks()
    names = np.array([d.encode() for d in ids.dictionary.to_pylist()], dtype=np.bytes_)
    codes = ids.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    lon, lat = (
        _filled(table, "lon", np.dtype(np.float64)),
        _filled(table, "lat", np.dtype(np.float64)),
    )
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        return None
    return CsvPositions(
        ids=None,
        time_ms=time_ms,
        lon=lon,
        lat=lat,
        speed_kmh=_filled(table, "speed_kmh", np.dtype(np.float32), used),
        course=_filled(table, "course", np.dtype(np.int16), used),
        alarm=_filled(table, "alarm", np.dtype(np.uint32), used),
        status=_filled(table, "status", np.dtype(np.uint32), used),
        lines=None,
        errors=[],
        bulk=True,
        device_names=names,
        device_codes=codes,
        recv_ms=recv_ms,
    )


def _arrow_times(
    table: Any, name: str, stand_in: npt.NDArray[np.int64] | None = None
) -> npt.NDArray[np.int64] | None:
    """A time column in epoch ms; None when a value does not parse. With `stand_in`, an empty
    value takes the stand-in's."""
    if table.schema.field(name).type != pa.string():
        return _filled(table, name, np.dtype("datetime64[ms]")).view(np.int64)
    raw = np.array([t.encode() for t in table.column(name).to_pylist()], dtype=np.bytes_)
    times, ok = parse_times_ms(raw)
    if stand_in is not None:
        empty = raw == b""
        times = np.where(empty, stand_in, times)
        ok |= empty
    return times if ok.all() else None


def _filled(
    table: Any, name: str, dtype: np.dtype[Any], used: Sequence[str] | None = None
) -> npt.NDArray[Any]:
    """A column of the table as one numpy array of `dtype` (cast as `astype` casts), written
    chunk by chunk into one allocation; an empty value (null) is 0, and so is every value of a
    column not in `used` (when given). No Arrow compute kernels: loading pyarrow.compute costs
    more than the conversion."""
    out = np.empty(table.num_rows, dtype)
    if used is not None and name not in used:
        out.fill(0)
        return out
    at = 0
    for chunk in table.column(name).chunks:
        values = chunk.to_numpy(zero_copy_only=False)
        if chunk.null_count:
            values = np.where(np.isnan(values), 0, values)
        out[at : at + len(values)] = values
        at += len(values)
    return out


def _read_arrow(data: bytes | Any, used: list[str], time_type: Any) -> Any:
    """The file as an Arrow table with `time` of `time_type` (or text when the times are not
    ISO 8601); None when Arrow cannot read it."""
    types: dict[str, Any] = {
        "device_id": pa.dictionary(pa.int32(), pa.string()),
        "time": time_type,
        RECEIVED: time_type,
        "lat": pa.float64(),
        "lon": pa.float64(),
        "speed_kmh": pa.float64(),
        # Typed as they are kept: a course that is not a whole number in int16's range, or a
        # word outside 0..2^32 - 1, fails the read, and the other paths take the file (the
        # course clipped, the word reported), so the fast path needs no checks or copies.
        "course": pa.int16(),
        "alarm": pa.uint32(),
        "status": pa.uint32(),
    }
    try:
        if not isinstance(data, bytes):
            data.seek(0)
        return pa_csv.read_csv(
            io.BytesIO(data) if isinstance(data, bytes) else data,
            read_options=pa_csv.ReadOptions(encoding="utf8"),
            parse_options=pa_csv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: types[name] for name in used},
                include_columns=used,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        if time_type == pa.string():
            return None
        return _read_arrow(data, used, pa.string())  # epoch seconds, or a row to look at
    except (pa.ArrowTypeError, UnicodeDecodeError):
        return None


def _dtype(used: list[str]) -> np.dtype[Any]:
    kinds = {
        "device_id": f"S{_ID_WIDTH}",
        "time": f"S{_TIME_WIDTH}",
        RECEIVED: f"S{_TIME_WIDTH}",
        "lat": "f8",
        "lon": "f8",
        "speed_kmh": "f8",
        "course": "f8",
        "alarm": "i8",
        "status": "i8",
    }
    return np.dtype([(name, kinds[name]) for name in used])


def _fast(data: bytes, body: bytes, header: list[str], used: list[str]) -> npt.NDArray[np.void]:
    """numpy's C reader over the whole file. Latin-1 maps every byte to one character and back,
    so byte-string fields keep their exact (UTF-8) bytes while numbers parse as ASCII."""
    if not body or body.isspace():
        return np.zeros(0, _dtype(used))
    cols = [header.index(name) for name in used]
    order = np.argsort(cols)
    sorted_dtype = np.dtype([(used[i], _dtype(used)[used[i]]) for i in order])
    quotechar = '"' if b'"' in body else None
    loaded = np.loadtxt(
        io.BytesIO(data),
        encoding="latin-1",
        skiprows=1,
        delimiter=",",
        dtype=sorted_dtype,
        usecols=[cols[i] for i in order],
        comments=None,
        quotechar=quotechar,
        ndmin=1,
    )
    for name in ("device_id", "time", RECEIVED):
        if name in used:
            chars = np.ascontiguousarray(loaded[name]).view(np.uint8).reshape(len(loaded), -1)
            if (chars[:, -1] != 0).any():
                raise ValueError(f"{name} longer than the fast path keeps")
            if name != RECEIVED and (chars[:, 0] == 0).any():
                raise ValueError(f"{name} empty")
    return loaded


def _careful(
    body: str, header: list[str], used: list[str]
) -> tuple[npt.NDArray[np.void], npt.NDArray[np.int64], list[RowError]]:
    """Row by row: every bad row becomes a RowError, every good one is kept."""
    position = {name: header.index(name) for name in used}
    good: list[tuple[Any, ...]] = []
    lines: list[int] = []
    errors: list[RowError] = []
    reader = csv.reader(io.StringIO(body))
    for row in reader:
        line = reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        values: list[Any] = []
        bad: RowError | None = None
        for name in used:
            at = position[name]
            raw = row[at].strip() if at < len(row) else ""
            value, reason = _convert(name, raw)
            if reason:
                bad = RowError(line, name, reason)
                break
            values.append(value)
        if bad is not None:
            errors.append(bad)
            continue
        good.append(tuple(values))
        lines.append(line)
    # Text fields as wide as the longest value seen (the bulk path's widths are a fast guess).
    widths = {
        name: max([len(row[i]) for row in good], default=0) + 1
        for i, name in enumerate(used)
        if name in ("device_id", "time", RECEIVED)
    }
    dtype = np.dtype([(n, f"S{widths[n]}" if n in widths else _dtype(used)[n]) for n in used])
    return np.array(good, dtype=dtype), np.array(lines, dtype=np.int64), errors


def _convert(name: str, raw: str) -> tuple[Any, str]:
    if name == RECEIVED:
        return raw.encode(), ""
    if name in ("device_id", "time"):
        if not raw:
            return None, "empty"
        return raw.encode(), ""
    if name in ("alarm", "status"):
        if not raw:
            return 0, ""
        try:
            value = int(raw)
        except ValueError:
            return None, f"{raw!r} is not an integer"
        if not 0 <= value < 2**32:
            return None, f"{value} is not a 32-bit word"
        return value, ""
    if not raw and name in ("speed_kmh", "course"):
        return 0.0, ""
    try:
        number = float(raw)
    except ValueError:
        return None, f"{raw!r} is not a number"
    if not np.isfinite(number):
        return None, f"{raw!r} is not a finite number"
    return number, ""


def _columns(
    table: npt.NDArray[np.void], line: npt.NDArray[np.int64], errors: list[RowError], bulk: bool
) -> CsvPositions:
    names = table.dtype.names or ()
    times, keep = parse_times_ms(table["time"])
    errors = list(errors)
    for i in np.flatnonzero(~keep):
        raw = bytes(table["time"][i]).decode("utf-8", "replace")
        reason = f"{raw!r} is not ISO 8601 with offset or epoch seconds"
        errors.append(RowError(int(line[i]), "time", reason))
    recv: npt.NDArray[np.int64] | None = None
    if RECEIVED in names:
        given = table[RECEIVED] != b""
        recv, parsed = parse_times_ms(table[RECEIVED])
        recv = np.where(given, recv, times)
        wrong = keep & given & ~parsed
        for i in np.flatnonzero(wrong):
            raw = bytes(table[RECEIVED][i]).decode("utf-8", "replace")
            reason = f"{raw!r} is not ISO 8601 with offset or epoch seconds"
            errors.append(RowError(int(line[i]), RECEIVED, reason))
        keep &= ~wrong
    for name in ("alarm", "status"):
        if name in names:
            values = table[name]
            wrong = keep & ((values < 0) | (values >= 2**32))
            errors.extend(
                RowError(int(line[i]), name, "not a 32-bit word") for i in np.flatnonzero(wrong)
            )
            keep &= ~wrong
    errors.sort(key=lambda e: e.line)
    n = int(keep.sum())

    def column(name: str, dtype: Any) -> Any:
        if name not in names:
            return np.zeros(n, dtype)
        return np.asarray(table[name][keep]).astype(dtype)

    return CsvPositions(
        ids=table["device_id"][keep],
        time_ms=times[keep],
        lon=column("lon", np.float64),
        lat=column("lat", np.float64),
        speed_kmh=column("speed_kmh", np.float32),
        course=np.clip(column("course", np.float64), -32768, 32767).astype(np.int16),
        alarm=column("alarm", np.uint32),
        status=column("status", np.uint32),
        lines=line[keep],
        errors=errors,
        bulk=bulk,
        recv_ms=None if recv is None else recv[keep],
    )


def device_indexes(device_id: npt.NDArray[np.bytes_], index: DeviceIndex) -> npt.NDArray[np.int32]:
    """Dense indexes for a column of ids: one dictionary lookup per distinct id, not per row."""
    if len(device_id) == 0:
        return np.zeros(0, np.int32)
    width = -(-device_id.dtype.itemsize // 8) * 8
    ids = np.ascontiguousarray(device_id.astype(f"S{width}"))
    words = ids.view(np.uint64).reshape(len(ids), width // 8)
    key = np.zeros(len(ids), np.uint64)
    for k in range(words.shape[1]):
        key = key * np.uint64(0x100000001B3) ^ words[:, k]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    distinct = ids[first]
    if not (distinct[inverse] == ids).all():  # a hash collision: exact but slower
        distinct, inverse = np.unique(ids, return_inverse=True)
    mapped = np.fromiter(
        (index.index_of(d.decode("utf-8", "replace")) for d in distinct.tolist()),
        dtype=np.int32,
        count=len(distinct),
    )
    return mapped[inverse]
