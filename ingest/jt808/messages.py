"""Message bodies: one frozen dataclass per message, with its decoder and encoder.

Each class has MSG_ID, `decode(body, edition)` and `encode(edition)`. Decoders raise
FrameError(bad_body) with the field that failed; encoders raise Jt808UsageError.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ingest.jt808.body import exact, need, pack
from ingest.jt808.control import (
    MultimediaEvent,
    PassThrough,
    ResendRequest,
    TerminalControl,
    TextMessage,
    VehicleControl,
)
from ingest.jt808.errors import Jt808UsageError
from ingest.jt808.fields import (
    decode_fixed,
    decode_text,
    encode_fixed,
    encode_text,
)
from ingest.jt808.ids import Edition, MessageId
from ingest.jt808.location import LocationReport
from ingest.jt808.location_messages import (
    BATCH_BACKFILL,
    BATCH_NORMAL,
    BatchLocationReport,
    LocationQuery,
    LocationQueryReply,
    TemporaryTracking,
    VehicleControlReply,
)
from ingest.jt808.parameters import (
    ParametersReply,
    Params,
    QueryParameters,
    SetParameters,
    param_value,
)

__all__ = [
    "BATCH_BACKFILL",
    "BATCH_NORMAL",
    "Authenticate",
    "BatchLocationReport",
    "Deregister",
    "Heartbeat",
    "LocationQuery",
    "LocationQueryReply",
    "LocationReport",
    "Message",
    "MultimediaEvent",
    "ParametersReply",
    "Params",
    "PassThrough",
    "PlatformGeneralResponse",
    "QueryParameters",
    "RawMessage",
    "Register",
    "RegisterResponse",
    "ResendRequest",
    "SetParameters",
    "TemporaryTracking",
    "TerminalControl",
    "TerminalGeneralResponse",
    "TextMessage",
    "VehicleControl",
    "VehicleControlReply",
    "param_value",
]

_ANSWER = struct.Struct(">HHB")


# ---------------------------------------------------------------- general answers


@dataclass(frozen=True, slots=True)
class TerminalGeneralResponse:
    """0x0001: the terminal's answer to a platform message without a dedicated reply."""

    MSG_ID: ClassVar[int] = MessageId.TERMINAL_GENERAL_RESPONSE
    answer_serial: int
    answer_id: int
    result: int = 0

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> TerminalGeneralResponse:
        exact(body, 5, "general response")
        return cls(*_ANSWER.unpack(body))

    def encode_body(self) -> bytes:
        return pack(_ANSWER, self.answer_serial, self.answer_id, self.result)


@dataclass(frozen=True, slots=True)
class PlatformGeneralResponse:
    """0x8001: the platform's answer (0 ok, 1 failed, 2 bad message, 3 unsupported, 4 alarm)."""

    MSG_ID: ClassVar[int] = MessageId.PLATFORM_GENERAL_RESPONSE
    answer_serial: int
    answer_id: int
    result: int = 0

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> PlatformGeneralResponse:
        exact(body, 5, "general response")
        return cls(*_ANSWER.unpack(body))

    def encode_body(self) -> bytes:
        return pack(_ANSWER, self.answer_serial, self.answer_id, self.result)


# ---------------------------------------------------------------- link management


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """0x0002. Some devices append battery/RSSI bytes: kept raw in `extra`."""

    MSG_ID: ClassVar[int] = MessageId.HEARTBEAT
    extra: bytes = b""

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> Heartbeat:
        return cls(body)

    def encode_body(self) -> bytes:
        return self.extra


@dataclass(frozen=True, slots=True)
class Deregister:
    """0x0003: the terminal deregisters (its auth code is void afterwards)."""

    MSG_ID: ClassVar[int] = MessageId.DEREGISTER

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> Deregister:
        return cls()

    def encode_body(self) -> bytes:
        return b""


# 0x0100 widths per edition: maker id, model, terminal id.
_REGISTER_WIDTHS = {
    Edition.V2011: (5, 8, 7),
    Edition.V2013: (5, 20, 7),
    Edition.V2019: (11, 30, 30),
}


def _padded_inside(field: bytes) -> bool:
    """A fixed-width text field with NUL padding followed by more text: not a real field."""
    stripped = field.rstrip(b"\x00")
    return b"\x00" in stripped


@dataclass(frozen=True, slots=True)
class Register:
    """0x0100 terminal registration; field widths depend on the edition."""

    MSG_ID: ClassVar[int] = MessageId.REGISTER
    province_id: int
    city_id: int
    maker_id: str
    model: str
    terminal_id: str
    plate_color: int
    plate: str
    edition: Edition = Edition.V2013  # the body layout (2011 and 2013 share the header)

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> Register:
        if edition is not Edition.V2019:
            # 2011 and 2013 share the header; the 2013 fixed part is 37 bytes, 2011's is 25. A
            # 2011 body with a long plate (a VIN) reaches 37 bytes too: read as 2013, its model
            # field would hold the padding of the 2011 model followed by more text.
            edition = Edition.V2013
            if len(body) < 37 or _padded_inside(body[9:29]):
                edition = Edition.V2011
        maker_w, model_w, id_w = _REGISTER_WIDTHS[edition]
        fixed = 4 + maker_w + model_w + id_w + 1
        need(body, fixed, f"{edition.value} register")
        province, city = struct.unpack_from(">HH", body)
        p = 4
        maker = decode_fixed(body[p : p + maker_w])
        p += maker_w
        model = decode_fixed(body[p : p + model_w])
        p += model_w
        terminal_id = decode_fixed(body[p : p + id_w])
        p += id_w
        color = body[p]
        plate = decode_text(body[p + 1 :].rstrip(b"\x00"))
        return cls(province, city, maker, model, terminal_id, color, plate, edition)

    def encode_body(self) -> bytes:
        maker_w, model_w, id_w = _REGISTER_WIDTHS[self.edition]
        return (
            pack(struct.Struct(">HH"), self.province_id, self.city_id)
            + encode_fixed(self.maker_id, maker_w, "maker id")
            + encode_fixed(self.model, model_w, "model")
            + encode_fixed(self.terminal_id, id_w, "terminal id")
            + pack(struct.Struct(">B"), self.plate_color)
            + encode_text(self.plate)
        )


@dataclass(frozen=True, slots=True)
class RegisterResponse:
    """0x8100: result and, when the result is 0, the auth code."""

    MSG_ID: ClassVar[int] = MessageId.REGISTER_RESPONSE
    answer_serial: int
    result: int
    auth_code: str = ""

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> RegisterResponse:
        need(body, 3, "register response")
        serial, result = struct.unpack_from(">HB", body)
        code = decode_text(body[3:].rstrip(b"\x00")) if result == 0 else ""
        return cls(serial, result, code)

    def encode_body(self) -> bytes:
        head = pack(struct.Struct(">HB"), self.answer_serial, self.result)
        return head + (encode_text(self.auth_code) if self.result == 0 else b"")


@dataclass(frozen=True, slots=True)
class Authenticate:
    """0x0102: the auth code; 2019 adds a length byte, IMEI[15] and software version[20]."""

    MSG_ID: ClassVar[int] = MessageId.AUTHENTICATE
    auth_code: str
    imei: str = ""
    software_version: str = ""
    edition: Edition = Edition.V2013

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> Authenticate:
        if edition is not Edition.V2019:
            return cls(decode_text(body.rstrip(b"\x00")))
        need(body, 1, "2019 authentication")
        n = body[0]
        need(body, 1 + n + 35, "2019 authentication")
        code = decode_text(body[1 : 1 + n])
        imei = decode_fixed(body[1 + n : 16 + n])
        version = decode_fixed(body[16 + n : 36 + n])
        return cls(code, imei, version, Edition.V2019)

    def encode_body(self) -> bytes:
        code = encode_text(self.auth_code)
        if self.edition is not Edition.V2019:
            return code
        if len(code) > 0xFF:
            raise Jt808UsageError("auth code longer than 255 bytes")
        return (
            bytes((len(code),))
            + code
            + encode_fixed(self.imei, 15, "IMEI")
            + encode_fixed(self.software_version, 20, "software version")
        )


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A body we do not decode: unknown id, encrypted body, or one packet of several."""

    msg_id: int
    body: bytes

    @property
    def MSG_ID(self) -> int:  # noqa: N802  (same attribute as the message classes)
        return self.msg_id

    def encode_body(self) -> bytes:
        return self.body


Message = (
    TerminalGeneralResponse
    | PlatformGeneralResponse
    | Heartbeat
    | Deregister
    | Register
    | RegisterResponse
    | Authenticate
    | SetParameters
    | QueryParameters
    | ParametersReply
    | LocationReport
    | LocationQueryReply
    | BatchLocationReport
    | LocationQuery
    | TemporaryTracking
    | TerminalControl
    | VehicleControl
    | VehicleControlReply
    | TextMessage
    | ResendRequest
    | PassThrough
    | MultimediaEvent
    | RawMessage
)
Decoder = Callable[[bytes, Edition], Message]

DECODERS: dict[int, Decoder] = {
    cls.MSG_ID: cls.decode
    for cls in (
        TerminalGeneralResponse,
        PlatformGeneralResponse,
        Heartbeat,
        Deregister,
        Register,
        RegisterResponse,
        Authenticate,
        SetParameters,
        QueryParameters,
        ParametersReply,
        LocationQueryReply,
        BatchLocationReport,
        LocationQuery,
        TemporaryTracking,
        TerminalControl,
        VehicleControl,
        VehicleControlReply,
        TextMessage,
        ResendRequest,
        PassThrough,
        MultimediaEvent,
    )
}
DECODERS[MessageId.LOCATION_REPORT] = LocationReport.decode
