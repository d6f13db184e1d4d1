"""Message bodies: one frozen dataclass per message, with its decoder and encoder.

Each class has MSG_ID, `decode(body, edition)` and `encode(edition)`. Decoders raise
FrameError(bad_body) with the field that failed; encoders raise Jt808UsageError.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.fields import (
    decode_fixed,
    decode_text,
    encode_fixed,
    encode_text,
)
from ingest.jt808.ids import DWORD_PARAMS, Edition, ErrorCode, MessageId, ParamId
from ingest.jt808.location import LocationReport

__all__ = [
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
]

_ANSWER = struct.Struct(">HHB")


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise FrameError(ErrorCode.BAD_BODY, f"{what} needs {size} bytes, {len(body)} present")


def _exact(body: bytes, size: int, what: str) -> None:
    if len(body) != size:
        raise FrameError(ErrorCode.BAD_BODY, f"{what} is {size} bytes, got {len(body)}")


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
        _exact(body, 5, "general response")
        return cls(*_ANSWER.unpack(body))

    def encode_body(self) -> bytes:
        return _pack(_ANSWER, self.answer_serial, self.answer_id, self.result)


@dataclass(frozen=True, slots=True)
class PlatformGeneralResponse:
    """0x8001: the platform's answer (0 ok, 1 failed, 2 bad message, 3 unsupported, 4 alarm)."""

    MSG_ID: ClassVar[int] = MessageId.PLATFORM_GENERAL_RESPONSE
    answer_serial: int
    answer_id: int
    result: int = 0

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> PlatformGeneralResponse:
        _exact(body, 5, "general response")
        return cls(*_ANSWER.unpack(body))

    def encode_body(self) -> bytes:
        return _pack(_ANSWER, self.answer_serial, self.answer_id, self.result)


def _pack(fmt: struct.Struct, *values: int) -> bytes:
    try:
        return fmt.pack(*values)
    except struct.error as exc:
        raise Jt808UsageError(f"field out of range: {exc}") from exc


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
        _need(body, fixed, f"{edition.value} register")
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
            _pack(struct.Struct(">HH"), self.province_id, self.city_id)
            + encode_fixed(self.maker_id, maker_w, "maker id")
            + encode_fixed(self.model, model_w, "model")
            + encode_fixed(self.terminal_id, id_w, "terminal id")
            + _pack(struct.Struct(">B"), self.plate_color)
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
        _need(body, 3, "register response")
        serial, result = struct.unpack_from(">HB", body)
        code = decode_text(body[3:].rstrip(b"\x00")) if result == 0 else ""
        return cls(serial, result, code)

    def encode_body(self) -> bytes:
        head = _pack(struct.Struct(">HB"), self.answer_serial, self.result)
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
        _need(body, 1, "2019 authentication")
        n = body[0]
        _need(body, 1 + n + 35, "2019 authentication")
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


# ---------------------------------------------------------------- parameters

Params = tuple[tuple[int, bytes], ...]


def _decode_params(body: bytes, offset: int, count: int, what: str) -> Params:
    params: list[tuple[int, bytes]] = []
    p = offset
    for i in range(count):
        if p + 5 > len(body):
            raise FrameError(ErrorCode.BAD_BODY, f"{what}: parameter {i + 1} of {count} truncated")
        param_id = int.from_bytes(body[p : p + 4], "big")
        n = body[p + 4]
        if p + 5 + n > len(body):
            raise FrameError(
                ErrorCode.BAD_BODY, f"{what}: parameter 0x{param_id:04x} declares {n} bytes"
            )
        params.append((param_id, body[p + 5 : p + 5 + n]))
        p += 5 + n
    if p != len(body):
        raise FrameError(ErrorCode.BAD_BODY, f"{what}: {len(body) - p} bytes after the parameters")
    return tuple(params)


def _encode_params(params: Params) -> bytes:
    if len(params) > 0xFF:
        raise Jt808UsageError("more than 255 parameters in one message")
    out = bytearray((len(params),))
    for param_id, value in params:
        if len(value) > 0xFF:
            raise Jt808UsageError(f"parameter 0x{param_id:04x} longer than 255 bytes")
        out += _pack(struct.Struct(">IB"), param_id, len(value)) + value
    return bytes(out)


def param_value(param_id: int, value: bytes) -> int | str:
    """A parameter as a number (DWORD/WORD/BYTE ids we know) or text."""
    if param_id in DWORD_PARAMS and len(value) in (1, 2, 4):
        return int.from_bytes(value, "big")
    return decode_text(value.rstrip(b"\x00"))


@dataclass(frozen=True, slots=True)
class SetParameters:
    """0x8103: set terminal parameters (id DWORD, length BYTE, value)."""

    MSG_ID: ClassVar[int] = MessageId.SET_PARAMETERS
    params: Params

    @classmethod
    def of(cls, values: dict[ParamId, int | str]) -> SetParameters:
        """From readable values: numbers for DWORD parameters, text for the others."""
        params: list[tuple[int, bytes]] = []
        for param_id, value in values.items():
            if isinstance(value, int):
                if param_id not in DWORD_PARAMS:
                    raise Jt808UsageError(f"parameter {param_id!r} is not numeric")
                params.append((int(param_id), _pack(struct.Struct(">I"), value)))
            else:
                params.append((int(param_id), encode_text(value)))
        return cls(tuple(params))

    def values(self) -> dict[int, int | str]:
        return {pid: param_value(pid, value) for pid, value in self.params}

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> SetParameters:
        _need(body, 1, "set parameters")
        return cls(_decode_params(body, 1, body[0], "set parameters"))

    def encode_body(self) -> bytes:
        return _encode_params(self.params)


@dataclass(frozen=True, slots=True)
class QueryParameters:
    """0x8104: ask for every parameter; answered by 0x0104."""

    MSG_ID: ClassVar[int] = MessageId.QUERY_PARAMETERS

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> QueryParameters:
        return cls()

    def encode_body(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class ParametersReply:
    """0x0104: answer serial, then parameters as in 0x8103."""

    MSG_ID: ClassVar[int] = MessageId.PARAMETERS_REPLY
    answer_serial: int
    params: Params

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> ParametersReply:
        _need(body, 3, "parameters reply")
        serial, count = struct.unpack_from(">HB", body)
        return cls(serial, _decode_params(body, 3, count, "parameters reply"))

    def encode_body(self) -> bytes:
        return _pack(struct.Struct(">H"), self.answer_serial) + _encode_params(self.params)

    def values(self) -> dict[int, int | str]:
        return {pid: param_value(pid, value) for pid, value in self.params}


# ---------------------------------------------------------------- locations


@dataclass(frozen=True, slots=True)
class LocationQueryReply:
    """0x0201: answer serial + a location body."""

    MSG_ID: ClassVar[int] = MessageId.LOCATION_QUERY_REPLY
    answer_serial: int
    location: LocationReport

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> LocationQueryReply:
        _need(body, 2, "location query reply")
        return cls(int.from_bytes(body[:2], "big"), LocationReport.decode_from(body, 2))

    def encode_body(self) -> bytes:
        return _pack(struct.Struct(">H"), self.answer_serial) + self.location.encode_body()


@dataclass(frozen=True, slots=True)
class VehicleControlReply:
    """0x0500: answer serial + a location body, the answer to a 0x8500."""

    MSG_ID: ClassVar[int] = MessageId.VEHICLE_CONTROL_REPLY
    answer_serial: int
    location: LocationReport

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> VehicleControlReply:
        _need(body, 2, "vehicle control reply")
        return cls(int.from_bytes(body[:2], "big"), LocationReport.decode_from(body, 2))

    def encode_body(self) -> bytes:
        return _pack(struct.Struct(">H"), self.answer_serial) + self.location.encode_body()


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
        _need(body, 3, "batch location report")
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
        out = bytearray(_pack(struct.Struct(">HB"), len(self.items), self.kind))
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
        _need(body, 2, "temporary tracking")
        interval = int.from_bytes(body[:2], "big")
        if interval == 0 and len(body) < 6:
            return cls(0, 0)
        _need(body, 6, "temporary tracking")
        return cls(interval, int.from_bytes(body[2:6], "big"))

    def encode_body(self) -> bytes:
        if self.interval_s == 0:
            return b"\x00\x00"
        return _pack(struct.Struct(">HI"), self.interval_s, self.validity_s)


# ---------------------------------------------------------------- control, text, data


@dataclass(frozen=True, slots=True)
class TerminalControl:
    """0x8105: command word (1 upgrade, 2 connect to server, 3 power off, 4 reset, ...)."""

    MSG_ID: ClassVar[int] = MessageId.TERMINAL_CONTROL
    command: int
    params: str = ""

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> TerminalControl:
        _need(body, 1, "terminal control")
        return cls(body[0], decode_text(body[1:]))

    def encode_body(self) -> bytes:
        return _pack(struct.Struct(">B"), self.command) + encode_text(self.params)


@dataclass(frozen=True, slots=True)
class VehicleControl:
    """0x8500 (2013 body): the control flag byte. Bit 0 locks (1) or unlocks (0) the doors;
    trackers fitted with a relay use further bits, as their maker documents, to cut fuel and
    power for a repossession. The terminal answers 0x0500 with its location."""

    MSG_ID: ClassVar[int] = MessageId.VEHICLE_CONTROL
    flags: int

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> VehicleControl:
        _need(body, 1, "vehicle control")
        return cls(body[0])

    def encode_body(self) -> bytes:
        return _pack(struct.Struct(">B"), self.flags)


@dataclass(frozen=True, slots=True)
class TextMessage:
    """0x8300: flag byte (urgent, display, TTS, ...) + GBK text, often run as a command."""

    MSG_ID: ClassVar[int] = MessageId.TEXT_MESSAGE
    flags: int
    text: str

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> TextMessage:
        _need(body, 1, "text message")
        return cls(body[0], decode_text(body[1:]))

    def encode_body(self) -> bytes:
        return _pack(struct.Struct(">B"), self.flags) + encode_text(self.text)


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
        _need(body, head, "resend request")
        serial = int.from_bytes(body[:2], "big")
        count = int.from_bytes(body[2:4], "big") if wide else body[2]
        _exact(body, head + 2 * count, "resend request")
        ids = struct.unpack_from(f">{count}H", body, head)
        return cls(serial, tuple(ids), Edition.V2019 if wide else Edition.V2013)

    def encode_body(self) -> bytes:
        n = len(self.packet_indexes)
        head = (
            _pack(struct.Struct(">HH"), self.original_serial, n)
            if self.edition is Edition.V2019
            else _pack(struct.Struct(">HB"), self.original_serial, n)
        )
        return head + _pack(struct.Struct(f">{n}H"), *self.packet_indexes)


@dataclass(frozen=True, slots=True)
class PassThrough:
    """0x0900 data pass-through: type byte + payload, kept raw."""

    MSG_ID: ClassVar[int] = MessageId.PASS_THROUGH
    kind: int
    payload: bytes

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> PassThrough:
        _need(body, 1, "pass-through")
        return cls(body[0], body[1:])

    def encode_body(self) -> bytes:
        return _pack(struct.Struct(">B"), self.kind) + self.payload


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
        _exact(body, 8, "multimedia event")
        return cls(*struct.unpack(">IBBBB", body))

    def encode_body(self) -> bytes:
        return _pack(
            struct.Struct(">IBBBB"),
            self.media_id,
            self.media_type,
            self.media_format,
            self.event,
            self.channel,
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
