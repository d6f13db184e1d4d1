"""PostgreSQL binary COPY rows from and to position columns, built with numpy, no I/O.

Every stored column is fixed-width and NOT NULL, so a COPY tuple is a fixed-size record: the
whole buffer is one numpy structured array (big-endian), written or parsed in a single pass
instead of one Python object per row. Kept pure and apart from the connection, as psycopg does
for its own row formatting.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from positions import PositionBatch, empty_batch

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # no flags, no extension
TRAILER = b"\xff\xff"
# timestamptz travels as int64 microseconds since 2000-01-01 UTC.
PG_EPOCH_MS = 946_684_800_000

# (SQL column, wire dtype, batch column it comes from)
WIRE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("device_id", ">i4", "device"),
    ("fix_time", ">i8", "time_ms"),
    ("recv_time", ">i8", "recv_ms"),
    ("device_time", ">i8", "device_time_ms"),
    ("lon", ">f8", "lon"),
    ("lat", ">f8", "lat"),
    ("speed_kmh", ">f4", "speed_kmh"),
    ("course", ">i2", "course"),
    ("altitude_m", ">i4", "altitude_m"),
    ("alarm", ">i8", "alarm"),
    ("status", ">i8", "status"),
    ("flags", ">i4", "flags"),
)
COLUMN_LIST = ", ".join(sql for sql, _, _ in WIRE_COLUMNS)
# The same columns to read: rows stored before `device_time` existed hold NULL there, meaning
# the fix time (and every field of a COPY row must be present for the fixed-width parse).
SELECT_LIST = COLUMN_LIST.replace("device_time", "coalesce(device_time, fix_time)")
_TIME_COLUMNS = {"time_ms", "recv_ms", "device_time_ms"}


def _tuple_dtype(with_seq: bool) -> np.dtype[Any]:
    fields: list[tuple[str, str]] = [("count", ">i2")]
    if with_seq:
        fields += [("len_seq", ">i4"), ("seq", ">i8")]
    for i, (_, wire, _) in enumerate(WIRE_COLUMNS):
        fields += [(f"len{i}", ">i4"), (f"val{i}", wire)]
    return np.dtype(fields)


TUPLE_DTYPE = _tuple_dtype(with_seq=False)
SEQ_TUPLE_DTYPE = _tuple_dtype(with_seq=True)


class CopyFormatError(ValueError):
    """A COPY stream that is not the fixed layout we asked the server for."""


def encode(
    batch: PositionBatch, device_ids: npt.NDArray[np.int32], first_seq: int | None = None
) -> bytes:
    """A complete binary COPY stream; `device_ids[batch.device]` are the stored device keys.

    With `first_seq`, rows lead with `seq` numbered from it (`COPY positions (seq, ...)`).
    """
    return HEADER + _encode_rows(batch, device_ids, first_seq) + TRAILER


def encode_chunks(
    batch: PositionBatch,
    device_ids: npt.NDArray[np.int32],
    first_seq: int | None = None,
    rows_per_chunk: int = 8192,
) -> Iterator[bytes]:
    """The same stream as `encode`, in pieces: the server parses one piece while the next is
    encoded, instead of waiting for the whole buffer."""
    yield HEADER
    columns = batch.columns()
    for start in range(0, len(batch), rows_per_chunk):
        part = PositionBatch(**{k: v[start : start + rows_per_chunk] for k, v in columns.items()})
        yield _encode_rows(part, device_ids, None if first_seq is None else first_seq + start)
    yield TRAILER


def _encode_rows(
    batch: PositionBatch, device_ids: npt.NDArray[np.int32], first_seq: int | None
) -> bytes:
    dtype = TUPLE_DTYPE if first_seq is None else SEQ_TUPLE_DTYPE
    rows = np.empty(len(batch), dtype=dtype)
    rows["count"] = len(WIRE_COLUMNS) + (first_seq is not None)
    if first_seq is not None:
        rows["len_seq"] = 8
        rows["seq"] = np.arange(first_seq, first_seq + len(batch), dtype=np.int64)
    for i, (_, wire, source) in enumerate(WIRE_COLUMNS):
        rows[f"len{i}"] = np.dtype(wire).itemsize
        if source == "device":
            rows[f"val{i}"] = device_ids[batch.device]
        elif source in _TIME_COLUMNS:
            rows[f"val{i}"] = (getattr(batch, source) - PG_EPOCH_MS) * 1000
        else:
            rows[f"val{i}"] = getattr(batch, source)
    return rows.tobytes()


def decode(stream: bytes) -> PositionBatch:
    """Parses `COPY (SELECT <COLUMN_LIST> ...) TO STDOUT (FORMAT BINARY)` output.

    The device column holds the stored device keys; callers remap them.
    """
    return _batch(_rows(stream, TUPLE_DTYPE, len(WIRE_COLUMNS)))


def decode_with_seq(stream: bytes) -> tuple[PositionBatch, npt.NDArray[np.int64]]:
    """Same for `SELECT seq, <COLUMN_LIST>`: the batch and the store sequence numbers."""
    rows = _rows(stream, SEQ_TUPLE_DTYPE, len(WIRE_COLUMNS) + 1)
    if len(rows) and np.any(rows["len_seq"] != 8):
        raise CopyFormatError("binary COPY seq field is not 8 bytes")
    return _batch(rows), rows["seq"].astype(np.int64)


def _rows(stream: bytes, dtype: np.dtype[Any], field_count: int) -> npt.NDArray[Any]:
    if not stream.startswith(SIGNATURE) or len(stream) < len(HEADER) + len(TRAILER):
        raise CopyFormatError("not a binary COPY stream")
    if not stream.endswith(TRAILER):
        raise CopyFormatError("binary COPY stream has no trailer")
    start = 19 + int.from_bytes(stream[15:19], "big")  # skip the header extension area
    body = memoryview(stream)[start : len(stream) - len(TRAILER)]
    if len(body) % dtype.itemsize:
        raise CopyFormatError("binary COPY rows are not the expected fixed width")
    rows = np.frombuffer(body, dtype=dtype)
    if len(rows):
        widths = [np.dtype(wire).itemsize for _, wire, _ in WIRE_COLUMNS]
        if np.any(rows["count"] != field_count) or any(
            np.any(rows[f"len{i}"] != size) for i, size in enumerate(widths)
        ):
            raise CopyFormatError("binary COPY rows have unexpected field counts or widths")
    return rows


def _batch(rows: npt.NDArray[Any]) -> PositionBatch:
    columns: dict[str, Any] = {}
    for i, (_, _, target) in enumerate(WIRE_COLUMNS):
        values = rows[f"val{i}"]
        if target in _TIME_COLUMNS:
            values = values // 1000 + PG_EPOCH_MS
        columns[target] = values
    if not len(rows):
        return empty_batch()
    return PositionBatch.from_columns(columns)
