"""What every message body's decoder and encoder share: length checks that name the field,
and packing that turns an out-of-range value into a usage error."""

from __future__ import annotations

import struct

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.ids import ErrorCode


def need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise FrameError(ErrorCode.BAD_BODY, f"{what} needs {size} bytes, {len(body)} present")


def exact(body: bytes, size: int, what: str) -> None:
    if len(body) != size:
        raise FrameError(ErrorCode.BAD_BODY, f"{what} is {size} bytes, got {len(body)}")


def pack(fmt: struct.Struct, *values: int) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as exc:
        raise Jt808UsageError(f"field out of range: {exc}") from exc
