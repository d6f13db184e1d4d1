"""The journal's on-disk record: a checksummed binary frame around one position batch.

Layout (little-endian), one record after another in a segment file, no file header:

    magic  b"LWJ1"   4 bytes   finds garbage fast when a tail is torn
    length u32       payload bytes
    lsn    u64       log sequence number, strictly increasing across segments
    crc    u32       zlib.crc32 of magic+length+lsn+payload: a torn or flipped byte fails it
    payload:
      rows u32, terminals_bytes u32, terminals (ASCII ids joined by b"\\n"),
      then each `positions.COLUMNS` column as raw little-endian bytes, in that order;
      the device column holds indexes into this record's own terminal list.

Carrying terminal ids (not the process's dense device indexes) makes a record meaningful after a
restart, when the device index is rebuilt in another order.

Records written before the `device_time_ms` column existed hold every other column in the same
order; the payload's size tells the two layouts apart (the row count and name bytes are given, and
the two row widths differ), and such a record reads back with `device_time_ms` = `time_ms`, which
is what it meant then.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from positions import COLUMNS, PositionBatch

MAGIC = b"LWJ1"
HEADER = struct.Struct("<4sIQI")
HEADER_BYTES = HEADER.size
_COUNTS = struct.Struct("<II")
# Little-endian on disk whatever the host, so a journal moves between machines.
_DISK_DTYPES: dict[str, np.dtype[Any]] = {
    name: dtype.newbyteorder("<") for name, dtype in COLUMNS.items()
}
# The layout before `device_time_ms`: still read, never written.
_DISK_DTYPES_V1: dict[str, np.dtype[Any]] = {
    name: dtype for name, dtype in _DISK_DTYPES.items() if name != "device_time_ms"
}
# A record larger than this is certainly a corrupt length field, not data.
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024


class JournalFormatError(ValueError):
    """A record that fails its checksum or structure; the message says where."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One appended batch as read back: `batch.device` indexes `terminals`.

    `end_offset` is the record's end in the journal's logical byte stream (segments laid end to
    end); `Journal.mark_drained` takes the record to know how far the store has caught up.
    """

    lsn: int
    batch: PositionBatch
    terminals: tuple[str, ...]
    end_offset: int


def encode_payload(batch: PositionBatch, terminals: Sequence[str]) -> bytes:
    """Payload bytes for `batch`, whose device column indexes `terminals`."""
    if any(not t or "\n" in t for t in terminals):
        raise ValueError("terminal ids must be non-empty and free of newlines")
    names = "\n".join(terminals).encode("ascii")
    parts = [_COUNTS.pack(len(batch), len(names)), names]
    for name, dtype in _DISK_DTYPES.items():
        parts.append(np.ascontiguousarray(getattr(batch, name), dtype=dtype).tobytes())
    return b"".join(parts)


def decode_payload(payload: bytes | memoryview) -> tuple[PositionBatch, tuple[str, ...]]:
    """Inverse of `encode_payload`; raises JournalFormatError on inconsistent sizes."""
    view = memoryview(payload)
    if len(view) < _COUNTS.size:
        raise JournalFormatError("payload shorter than its counts")
    rows, names_len = _COUNTS.unpack_from(view, 0)
    offset = _COUNTS.size
    layout = _DISK_DTYPES
    if len(view) != offset + names_len + rows * _row_bytes(layout):
        layout = _DISK_DTYPES_V1
        if len(view) != offset + names_len + rows * _row_bytes(layout):
            raise JournalFormatError(
                f"payload of {len(view)} bytes does not hold {rows} rows and {names_len} name bytes"
            )
    names = bytes(view[offset : offset + names_len])
    terminals = tuple(names.decode("ascii").split("\n")) if names else ()
    offset += names_len
    columns: dict[str, Any] = {}
    for name, dtype in layout.items():
        size = rows * dtype.itemsize
        column = np.frombuffer(view[offset : offset + size], dtype=dtype)
        columns[name] = column.astype(COLUMNS[name])  # native order, owned, writable
        offset += size
    if "device_time_ms" not in columns:
        columns["device_time_ms"] = columns["time_ms"].copy()
    batch = PositionBatch(**columns)
    if rows and (int(batch.device.min()) < 0 or int(batch.device.max()) >= len(terminals)):
        raise JournalFormatError("device index outside the record's terminal list")
    return batch, terminals


def _row_bytes(layout: dict[str, np.dtype[Any]]) -> int:
    return sum(dtype.itemsize for dtype in layout.values())


def _crc(header_without_crc: bytes, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(header_without_crc))


def encode_record(lsn: int, payload: bytes) -> bytes:
    """Header + payload, ready for one write."""
    head = HEADER.pack(MAGIC, len(payload), lsn, 0)[:-4]
    return head + struct.pack("<I", _crc(head, payload)) + payload


@dataclass(frozen=True, slots=True)
class FramedRecord:
    """A record located in a buffer: its lsn and payload span, checksum verified."""

    lsn: int
    start: int
    end: int


def read_frame(buffer: bytes | memoryview, start: int) -> FramedRecord | None:
    """The record at `start`, or None when the bytes there are not a whole, valid record.

    None covers both a torn tail (too few bytes) and corruption (bad magic, length or checksum);
    `next_frame` finds where the records go on after a damaged one.
    """
    view = memoryview(buffer)
    if len(view) - start < HEADER_BYTES:
        return None
    magic, length, lsn, crc = HEADER.unpack_from(view, start)
    if magic != MAGIC or length > MAX_PAYLOAD_BYTES:
        return None
    end = start + HEADER_BYTES + length
    if end > len(view):
        return None
    payload = view[start + HEADER_BYTES : end]
    if _crc(bytes(view[start : start + HEADER_BYTES - 4]), payload) != crc:
        return None
    return FramedRecord(lsn=lsn, start=start, end=end)


def payload_of(buffer: bytes | memoryview, frame: FramedRecord) -> memoryview:
    return memoryview(buffer)[frame.start + HEADER_BYTES : frame.end]


def next_frame(buffer: bytes | memoryview, start: int, after_lsn: int) -> FramedRecord | None:
    """The first whole, valid record at or past `start` whose lsn exceeds `after_lsn`.

    How recovery steps over a damaged record: every record begins with `MAGIC` and is checked
    end to end by its CRC, so the next place where the magic starts a record that verifies is
    the next record boundary (a false match would need a 32-bit checksum collision on top).
    """
    data = bytes(buffer) if isinstance(buffer, memoryview) else buffer
    at = start
    while (at := data.find(MAGIC, at)) >= 0:
        frame = read_frame(data, at)
        if frame is not None and frame.lsn > after_lsn:
            return frame
        at += 1
    return None
