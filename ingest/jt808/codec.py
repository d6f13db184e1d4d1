"""Whole frames in and out: `decode_frame` and `encode_frame` (sans-IO, no state).

For transports that deliver one frame per message (MQTT) and for the stream connection, which
adds framing, sub-package reassembly and serial numbers on top.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.framing import open_frame, seal
from ingest.jt808.header import MAX_BODY, Header, build_header, parse_header
from ingest.jt808.ids import Edition, ErrorCode
from ingest.jt808.messages import (
    DECODERS,
    Authenticate,
    Message,
    RawMessage,
    Register,
    ResendRequest,
    VehicleControl,
)

# Bodies above this are sent in packets (libraries split around 1000 bytes).
PACKET_BODY = 1000


class Frame(NamedTuple):
    """A decoded frame: its header and its message body.

    `body` is a RawMessage for an unknown id, an encrypted body or one packet of several;
    `error` then says which (unknown_message), else it is None.
    """

    header: Header
    body: Message
    error: ErrorCode | None = None


def decode_body(header: Header, body: bytes) -> tuple[Message, ErrorCode | None]:
    """A complete (reassembled, plain) body → its message; RawMessage for an unknown id."""
    decoder = DECODERS.get(header.msg_id)
    if decoder is None:
        return RawMessage(header.msg_id, body), ErrorCode.UNKNOWN_MESSAGE
    return decoder(body, header.edition), None


def decode_frame(frame: bytes) -> Frame:
    """One frame (flags optional, still escaped) → Frame; raises FrameError for a bad frame."""
    header, body = parse_header(open_frame(frame))
    if header.packet_count is not None or header.encryption:
        return Frame(header, RawMessage(header.msg_id, body))
    decoder = DECODERS.get(header.msg_id)
    if decoder is None:
        return Frame(header, RawMessage(header.msg_id, body), ErrorCode.UNKNOWN_MESSAGE)
    return Frame(header, decoder(body, header.edition))


def _for_edition(message: Message, edition: Edition) -> Message:
    """Messages whose body layout depends on the edition follow the frame's edition."""
    if not isinstance(message, Register | Authenticate | ResendRequest | VehicleControl):
        return message
    if message.edition is edition or (
        edition is Edition.V2013 and message.edition is Edition.V2011
    ):
        return message
    return dataclasses.replace(message, edition=edition)


def encode_frames(
    message: Message,
    *,
    terminal: str | bytes,
    serial: int,
    edition: Edition = Edition.V2013,
    protocol_version: int = 1,
) -> list[bytes]:
    """Message → frames on the wire; a body over 1023 bytes is cut into packets that take
    consecutive serials from `serial` (wrapping at 65535)."""
    body = _for_edition(message, edition).encode_body()
    msg_id = int(message.MSG_ID)
    if not 0 <= msg_id <= 0xFFFF:
        raise Jt808UsageError(f"message id {msg_id} out of range")
    if len(body) <= MAX_BODY:
        head = build_header(
            msg_id,
            len(body),
            terminal=terminal,
            serial=serial,
            edition=edition,
            protocol_version=protocol_version,
        )
        return [seal(head + body)]
    chunks = [body[i : i + PACKET_BODY] for i in range(0, len(body), PACKET_BODY)]
    if len(chunks) > 0xFFFF:
        raise Jt808UsageError(f"body of {len(body)} bytes needs more than 65535 packets")
    frames = []
    for index, chunk in enumerate(chunks, start=1):
        head = build_header(
            msg_id,
            len(chunk),
            terminal=terminal,
            serial=(serial + index - 1) & 0xFFFF,
            edition=edition,
            protocol_version=protocol_version,
            packet=(len(chunks), index),
        )
        frames.append(seal(head + chunk))
    return frames


def encode_frame(
    message: Message,
    *,
    terminal: str | bytes,
    serial: int,
    edition: Edition = Edition.V2013,
    protocol_version: int = 1,
) -> bytes:
    """Message → one frame on the wire (flags, escapes, check code); see `encode_frames`."""
    frames = encode_frames(
        message,
        terminal=terminal,
        serial=serial,
        edition=edition,
        protocol_version=protocol_version,
    )
    if len(frames) != 1:
        raise Jt808UsageError(f"body needs {len(frames)} packets: use encode_frames")
    return frames[0]


def encode_packet(
    msg_id: int,
    chunk: bytes,
    *,
    terminal: str | bytes,
    serial: int,
    edition: Edition,
    count: int,
    index: int,
    protocol_version: int = 1,
) -> bytes:
    """One packet of a sub-packaged message, as re-sent on a 0x8003 request."""
    head = build_header(
        msg_id,
        len(chunk),
        terminal=terminal,
        serial=serial,
        edition=edition,
        protocol_version=protocol_version,
        packet=(count, index),
    )
    return seal(head + chunk)


__all__ = [
    "PACKET_BODY",
    "ErrorCode",
    "Frame",
    "FrameError",
    "decode_body",
    "decode_frame",
    "encode_frame",
    "encode_frames",
    "encode_packet",
]
