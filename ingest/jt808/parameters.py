"""Parameter messages: 0x8103 set, 0x8104 query, 0x0104 the terminal's reply."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar

from ingest.jt808.body import need, pack
from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.fields import decode_text, encode_text
from ingest.jt808.ids import DWORD_PARAMS, Edition, ErrorCode, MessageId, ParamId

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
        out += pack(struct.Struct(">IB"), param_id, len(value)) + value
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
                params.append((int(param_id), pack(struct.Struct(">I"), value)))
            else:
                params.append((int(param_id), encode_text(value)))
        return cls(tuple(params))

    def values(self) -> dict[int, int | str]:
        return {pid: param_value(pid, value) for pid, value in self.params}

    @classmethod
    def decode(cls, body: bytes, edition: Edition) -> SetParameters:
        need(body, 1, "set parameters")
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
        need(body, 3, "parameters reply")
        serial, count = struct.unpack_from(">HB", body)
        return cls(serial, _decode_params(body, 3, count, "parameters reply"))

    def encode_body(self) -> bytes:
        return pack(struct.Struct(">H"), self.answer_serial) + _encode_params(self.params)

    def values(self) -> dict[int, int | str]:
        return {pid: param_value(pid, value) for pid, value in self.params}
