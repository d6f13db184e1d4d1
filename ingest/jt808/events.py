"""Events a `Jt808Connection` produces from the bytes it receives (and from its timers)."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.jt808.header import Header
from ingest.jt808.ids import ErrorCode
from ingest.jt808.messages import Message


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A complete message. `error` is unknown_message when the body is kept raw."""

    header: Header
    message: Message
    error: ErrorCode | None = None


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame that could not be used; the stream stays in sync at the next 0x7e."""

    code: ErrorCode
    detail: str
    raw: bytes  # the escaped bytes between the flags
    header: Header | None = None  # when the header was sound (bad_body)


@dataclass(frozen=True, slots=True)
class LocationFrameReceived:
    """A 0x0200 frame left undecoded for the batch decoder (`location_payloads=True`).

    `payload` is the escaped bytes between the flags, as `decode_location_frames(...,
    flagged=False)` takes them; nothing about it has been checked yet.
    """

    payload: bytes


@dataclass(frozen=True, slots=True)
class PacketReceived:
    """One packet of a sub-packaged message arrived (the platform may acknowledge each)."""

    header: Header


@dataclass(frozen=True, slots=True)
class PacketsAbandoned:
    """A sub-packaged message never completed and was dropped."""

    msg_id: int
    first_serial: int
    missing: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReplyTimedOut:
    """A message we sent was retried and never answered."""

    serial: int
    msg_id: int


Event = (
    MessageReceived
    | FrameRejected
    | LocationFrameReceived
    | PacketReceived
    | PacketsAbandoned
    | ReplyTimedOut
)
