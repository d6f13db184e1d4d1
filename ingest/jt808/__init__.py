"""The JT/T 808 protocol core (2011, 2013, 2019), sans-IO: bytes in, messages out, and back.

- `decode_frame` / `encode_frame`: whole frames, for transports that keep message boundaries.
- `Jt808Connection`: a stream link for either role, with framing, reassembly and retries.
- `LinkSession` (`link`, `link_state`, `link_events`): the platform's policy for one link, its
  transition table, one timer and events out; the TCP shell and the MQTT bridge drive it.
- `ingest.jt808.messages`: one dataclass per message body.
- `ingest.jt808.batch`: many 0x0200 frames at once into numpy columns (the gateway's hot path).
"""

from ingest.jt808.codec import Frame, decode_frame, encode_frame, encode_frames
from ingest.jt808.connection import Jt808Connection
from ingest.jt808.errors import FrameError, Jt808Error, Jt808ProtocolError, Jt808UsageError
from ingest.jt808.events import (
    Event,
    FrameRejected,
    LocationFrameReceived,
    MessageReceived,
    PacketReceived,
    PacketsAbandoned,
    ReplyTimedOut,
)
from ingest.jt808.header import Header
from ingest.jt808.ids import (
    Alarm,
    Edition,
    ErrorCode,
    MessageId,
    ParamId,
    RegisterResult,
    Result,
    Role,
    Status,
)
from ingest.jt808.location import LocationReport

__all__ = [
    "Alarm",
    "Edition",
    "ErrorCode",
    "Event",
    "Frame",
    "FrameError",
    "FrameRejected",
    "Header",
    "Jt808Connection",
    "Jt808Error",
    "Jt808ProtocolError",
    "Jt808UsageError",
    "LocationFrameReceived",
    "LocationReport",
    "MessageId",
    "MessageReceived",
    "PacketReceived",
    "PacketsAbandoned",
    "ParamId",
    "RegisterResult",
    "ReplyTimedOut",
    "Result",
    "Role",
    "Status",
    "decode_frame",
    "encode_frame",
    "encode_frames",
]
