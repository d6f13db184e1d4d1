"""Location messages beyond the 0x0200 report itself (`location`): 0x0201 the answer to a
query, 0x0500 the answer to a vehicle control, 0x0704 batch upload (live or blind-area
backfill), 0x8201 query, 0x8202 tracking."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from ingest.jt808.body import need, pack
from ingest.jt808.errors import FrameError
from ingest.jt808.ids import Edition, ErrorCode, MessageId
from ingest.jt808.location import LocationReport


@dataclass(frozen=True, slots=True)
class LocationQueryReply:
    """0x0201: answer serial + a location body."""

    MSG_ID: ClassVar[int] = MessageId.LOCATION_QUERY_REPLY
    answer_serial: int
    location: LocationReport

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> LocationQueryReply:
        need(body, 2, "location query reply")
        return cls(int.from_bytes(body[:2], "big"), LocationReport.decode_from(body, 2))

    def encode_body(self) -> bytes:
        return pack(struct.Struct(">H"), self.answer_serial) + self.location.encode_body()


@dataclass(frozen=True, slots=True)
class VehicleControlReply:
    """0x0500: answer serial + a location body, the answer to a 0x8500."""

    MSG_ID: ClassVar[int] = MessageId.VEHICLE_CONTROL_REPLY
    answer_serial: int
    location: LocationReport

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> VehicleControlReply:
        need(body, 2, "vehicle control reply")
        return cls(int.from_bytes(body[:2], "big"), LocationReport.decode_from(body, 2))

    def encode_body(self) -> bytes:
        return pack(struct.Struct(">H"), self.answer_serial) + self.location.encode_body()


BATCH_NORMAL = 0
BATCH_BACKFILL = 1  # blind-area re-send of stored points


@dataclass(frozen=True, slots=True)
class BatchLocationReport:
    """0x0704: count WORD, type BYTE (0 normal, 1 blind-area backfill), WORD-length items."""

    MSG_ID: ClassVar[int] = MessageId.BATCH_LOCATION_REPORT
    kind: int
    items: tuple[LocationReport, ...]

    @property
    def backfill(self) -> bool:
        return self.kind == BATCH_BACKFILL

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> BatchLocationReport:
        need(body, 3, "batch location report")
        count, kind = struct.unpack_from(">HB", body)
        items: list[LocationReport] = []
        p = 3
        while p < len(body):
            if p + 2 > len(body):
                raise FrameError(ErrorCode.BAD_BODY, f"batch item {len(items) + 1}: no length")
            n = int.from_bytes(body[p : p + 2], "big")
            if p + 2 + n > len(body):
                raise FrameError(
                    ErrorCode.BAD_BODY,
                    f"batch item {len(items) + 1} declares {n} bytes, {len(body) - p - 2} follow",
                )
            try:
                items.append(LocationReport.decode_from(body[p + 2 : p + 2 + n]))
            except FrameError as exc:
                raise FrameError(exc.code, f"batch item {len(items) + 1}: {exc.detail}") from None
            p += 2 + n
        if len(items) != count:
            raise FrameError(
                ErrorCode.BAD_BODY, f"batch declares {count} items, {len(items)} present"
            )
        return cls(kind, tuple(items))

    def encode_body(self) -> bytes:
        out = bytearray(pack(struct.Struct(">HB"), len(self.items), self.kind))
        for item in self.items:
            encoded = item.encode_body()
            out += len(encoded).to_bytes(2, "big") + encoded
        return bytes(out)


@dataclass(frozen=True, slots=True)
class LocationQuery:
    """0x8201: ask for the current position; answered by 0x0201."""

    MSG_ID: ClassVar[int] = MessageId.LOCATION_QUERY

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> LocationQuery:
        return cls()

    def encode_body(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class TemporaryTracking:
    """0x8202: report every `interval_s` for `validity_s`; interval 0 stops (no validity field)."""

    MSG_ID: ClassVar[int] = MessageId.TEMPORARY_TRACKING
    interval_s: int
    validity_s: int = 0

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> TemporaryTracking:
        need(body, 2, "temporary tracking")
        interval = int.from_bytes(body[:2], "big")
        if interval == 0 and len(body) < 6:
            return cls(0, 0)
        need(body, 6, "temporary tracking")
        return cls(interval, int.from_bytes(body[2:6], "big"))

    def encode_body(self) -> bytes:
        if self.interval_s == 0:
            return b"\x00\x00"
        return pack(struct.Struct(">HI"), self.interval_s, self.validity_s)
