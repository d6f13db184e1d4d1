"""Control, text and data messages: 0x8105 terminal control, 0x8500 vehicle control, 0x8300
text, 0x8003 resend request, 0x0900/0x8900 pass-through, 0x0800 multimedia event."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from ingest.jt808.body import exact, need, pack
from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.fields import decode_text, encode_text
from ingest.jt808.ids import Edition, ErrorCode, MessageId


@dataclass(frozen=True, slots=True)
class TerminalControl:
    """0x8105: command word (1 upgrade, 2 connect to server, 3 power off, 4 reset, ...)."""

    MSG_ID: ClassVar[int] = MessageId.TERMINAL_CONTROL
    command: int
    params: str = ""

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> TerminalControl:
        need(body, 1, "terminal control")
        return cls(body[0], decode_text(body[1:]))

    def encode_body(self) -> bytes:
        return pack(struct.Struct(">B"), self.command) + encode_text(self.params)


# JT/T 808-2019 0x8500 control type ids: the doors (parameter BYTE 0 unlock, 1 lock); 0x0002-
# 0x8000 reserved; 0xF001-0xFFFF the maker's own (relays cutting fuel and power).
DOOR_CONTROL = 0x0001
MAKER_CONTROLS = range(0xF001, 0x10000)


@dataclass(frozen=True, slots=True)
class VehicleControl:
    """0x8500, whose body depends on the edition (`edition`, set to the session's when sent).

    2013 (and 2011): the control flag byte `flags`. Bit 0 locks (1) or unlocks (0) the doors;
    trackers fitted with a relay use further bits, as their maker documents, to cut fuel and
    power for a repossession.
    2019: a WORD count of control types, then per type its id (WORD) and its parameter:
    `controls`, (type id, parameter) pairs. Every parameter here is one BYTE: the door's by the
    standard, the maker types' as trackers define them. Without `controls` a 2019 body carries
    the doors only, from flag bit 0; flag bits 1-7 have no 2019 control type, so they need
    `controls` (else a usage error: a fuel cut is never dropped silently).
    The terminal answers 0x0500 with its location."""

    MSG_ID: ClassVar[int] = MessageId.VEHICLE_CONTROL
    flags: int = 0
    controls: tuple[tuple[int, int], ...] = ()
    edition: Edition = Edition.V2013

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> VehicleControl:
        if edition is not Edition.V2019:
            need(body, 1, "vehicle control")
            return cls(body[0], edition=edition)
        need(body, 2, "2019 vehicle control")
        count = int.from_bytes(body[:2], "big")
        if count == 0:
            raise FrameError(ErrorCode.BAD_BODY, "2019 vehicle control without a control type")
        exact(body, 2 + 3 * count, "2019 vehicle control")
        values = struct.unpack_from(">" + "HB" * count, body, 2)
        pairs = tuple(zip(values[::2], values[1::2], strict=True))
        return cls(0, pairs, Edition.V2019)

    def entries(self) -> tuple[tuple[int, int], ...]:
        """The 2019 control types: `controls`, else the doors from flag bit 0."""
        if self.controls:
            return self.controls
        if self.flags & 0xFE:
            raise Jt808UsageError(
                f"vehicle control flags 0x{self.flags:02x}: bits 1-7 have no JT/T 808-2019"
                " control type; give the maker's types (0xF001-0xFFFF) as controls"
            )
        return ((DOOR_CONTROL, self.flags & 1),)

    def encode_body(self) -> bytes:
        if self.edition is not Edition.V2019:
            return pack(struct.Struct(">B"), self.flags)
        entries = self.entries()
        flat = [value for pair in entries for value in pair]
        return pack(struct.Struct(">H" + "HB" * len(entries)), len(entries), *flat)


@dataclass(frozen=True, slots=True)
class TextMessage:
    """0x8300: flag byte (urgent, display, TTS, ...) + GBK text, often run as a command."""

    MSG_ID: ClassVar[int] = MessageId.TEXT_MESSAGE
    flags: int
    text: str

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> TextMessage:
        need(body, 1, "text message")
        return cls(body[0], decode_text(body[1:]))

    def encode_body(self) -> bytes:
        return pack(struct.Struct(">B"), self.flags) + encode_text(self.text)


@dataclass(frozen=True, slots=True)
class ResendRequest:
    """0x8003: ask the peer to re-send packets of a sub-packaged message (count WORD in 2019)."""

    MSG_ID: ClassVar[int] = MessageId.RESEND_REQUEST
    original_serial: int
    packet_indexes: tuple[int, ...]
    edition: Edition = Edition.V2013

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> ResendRequest:
        wide = edition is Edition.V2019
        head = 4 if wide else 3
        need(body, head, "resend request")
        serial = int.from_bytes(body[:2], "big")
        count = int.from_bytes(body[2:4], "big") if wide else body[2]
        exact(body, head + 2 * count, "resend request")
        ids = struct.unpack_from(f">{count}H", body, head)
        return cls(serial, tuple(ids), Edition.V2019 if wide else Edition.V2013)

    def encode_body(self) -> bytes:
        n = len(self.packet_indexes)
        head = (
            pack(struct.Struct(">HH"), self.original_serial, n)
            if self.edition is Edition.V2019
            else pack(struct.Struct(">HB"), self.original_serial, n)
        )
        return head + pack(struct.Struct(f">{n}H"), *self.packet_indexes)


@dataclass(frozen=True, slots=True)
class PassThrough:
    """0x0900 data pass-through: type byte + payload, kept raw."""

    MSG_ID: ClassVar[int] = MessageId.PASS_THROUGH
    kind: int
    payload: bytes

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> PassThrough:
        need(body, 1, "pass-through")
        return cls(body[0], body[1:])

    def encode_body(self) -> bytes:
        return pack(struct.Struct(">B"), self.kind) + self.payload


@dataclass(frozen=True, slots=True)
class MultimediaEvent:
    """0x0800: media id, type, format, event and channel of a photo/audio/video."""

    MSG_ID: ClassVar[int] = MessageId.MULTIMEDIA_EVENT
    media_id: int
    media_type: int
    media_format: int
    event: int
    channel: int

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> MultimediaEvent:
        exact(body, 8, "multimedia event")
        return cls(*struct.unpack(">IBBBB", body))

    def encode_body(self) -> bytes:
        return pack(
            struct.Struct(">IBBBB"),
            self.media_id,
            self.media_type,
            self.media_format,
            self.event,
            self.channel,
        )
