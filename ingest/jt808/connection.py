"""`Jt808Connection`: the sans-IO state of one link, for either role.

Bytes in (`receive_data`), events out (`next_event`), messages in (`send`), bytes out
(`data_to_send`), and a clock passed in (`check_timeouts(now_s)`) for retries and reassembly.
It never touches a socket or reads the clock, so the gateway, the MQTT bridge and the simulator
share it and tests drive it with plain bytes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ingest.jt808.codec import decode_body, encode_frames
from ingest.jt808.errors import FrameError, Jt808ProtocolError, Jt808UsageError
from ingest.jt808.events import (
    Event,
    FrameRejected,
    LocationFrameReceived,
    MessageReceived,
    PacketReceived,
    PacketsAbandoned,
    ReplyTimedOut,
)
from ingest.jt808.framing import FrameSplitter, open_frame, plain_location
from ingest.jt808.header import Header, parse_header
from ingest.jt808.ids import Edition, MessageId, Role
from ingest.jt808.messages import (
    LocationQueryReply,
    Message,
    ParametersReply,
    PlatformGeneralResponse,
    RawMessage,
    RegisterResponse,
    ResendRequest,
    TerminalGeneralResponse,
    VehicleControlReply,
)
from ingest.jt808.reassembly import Reassembler

# Messages that are themselves answers: nothing answers them, so they are never retried.
_ANSWERS = frozenset(
    {
        MessageId.TERMINAL_GENERAL_RESPONSE,
        MessageId.PLATFORM_GENERAL_RESPONSE,
        MessageId.REGISTER_RESPONSE,
        MessageId.RESEND_REQUEST,
        MessageId.LOCATION_QUERY_REPLY,
        MessageId.PARAMETERS_REPLY,
    }
)


@dataclass(slots=True)
class _Pending:
    msg_id: int
    frames: list[bytes]
    deadline_s: float
    timeout_s: float
    attempt: int


class Jt808Connection:
    """One JT808 link. PLATFORM learns the terminal id and edition from what it receives;
    TERMINAL is given its own id and edition."""

    def __init__(
        self,
        role: Role,
        *,
        terminal: str | bytes | None = None,
        edition: Edition = Edition.V2013,
        protocol_version: int = 1,
        max_frame_bytes: int = 4096,
        reply_timeout_s: float = 10.0,
        max_retries: int = 3,
        reassembly_timeout_s: float = 30.0,
        max_message_bytes: int = 1 << 20,
        location_payloads: bool = False,
    ) -> None:
        if role is Role.TERMINAL and terminal is None:
            raise Jt808UsageError("a terminal connection needs its terminal id")
        self.role = role
        self.terminal: str | bytes | None = terminal
        self.edition = edition
        self.protocol_version = protocol_version
        self.reply_timeout_s = reply_timeout_s
        self.max_retries = max_retries
        self._splitter = FrameSplitter(max_frame_bytes)
        self._reassembler = Reassembler(timeout_s=reassembly_timeout_s, max_bytes=max_message_bytes)
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._serial = 0
        self._pending: dict[int, _Pending] = {}
        self._sent_packets: dict[tuple[int, int], list[bytes]] = {}
        self.peer_terminal: str | None = None
        # Hand single-frame 0x0200 reports over undecoded, for the vectorized decoder.
        self.location_payloads = location_payloads
        # False: packets of a sub-packaged message are announced (PacketReceived) and dropped,
        # never held (a link that has not authenticated yet gets no reassembly memory).
        self.reassemble = True
        self.frames_received = 0
        self.frames_rejected = 0

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes, now_s: float = 0.0) -> None:
        """Feeds bytes from the peer; events become available through `next_event`."""
        for payload in self._splitter.feed(data):
            self.receive_payload(payload, now_s)

    def receive_frame(self, frame: bytes, now_s: float = 0.0) -> None:
        """Feeds one whole frame (a transport that keeps message boundaries, such as MQTT)."""
        payload = frame[1:-1] if frame[:1] == b"\x7e" and frame[-1:] == b"\x7e" else frame
        self.receive_payload(payload, now_s)

    def next_event(self) -> Event | None:
        """The next event, or None; raises Jt808ProtocolError once a stream fault is reached."""
        if self._events:
            return self._events.popleft()
        if self._splitter.error is not None:
            raise self._splitter.error
        return None

    def events(self) -> list[Event]:
        """Every event available now (see `next_event` for the stream fault)."""
        out = list(self._events)
        self._events.clear()
        if not out and self._splitter.error is not None:
            raise self._splitter.error
        return out

    @property
    def broken(self) -> Jt808ProtocolError | None:
        return self._splitter.error

    def receive_payload(self, payload: bytes, now_s: float = 0.0) -> None:
        """Feeds the escaped bytes between two flags (a caller that frames the stream itself)."""
        if self.location_payloads and plain_location(payload):
            self.frames_received += 1
            self._events.append(LocationFrameReceived(payload))
            return
        header: Header | None = None
        try:
            content = open_frame(payload)
            header, body = parse_header(content)
            self._learn(header)
            if header.subpackaged:
                self._events.append(PacketReceived(header))
                if not self.reassemble:
                    self.frames_received += 1
                    return
                done = self._reassembler.add(header, body, now_s)
                if done is None:
                    self.frames_received += 1
                    return
                header, body = done.header, done.body
            if header.encryption:
                message: Message = RawMessage(header.msg_id, body)
                error = None
            else:
                message, error = decode_body(header, body)
        except FrameError as exc:
            self.frames_rejected += 1
            self._events.append(FrameRejected(exc.code, exc.detail, payload, header))
            return
        self.frames_received += 1
        self._on_message(header, message)
        self._events.append(MessageReceived(header, message, error))

    def _learn(self, header: Header) -> None:
        if self.role is Role.PLATFORM:
            self.terminal = header.terminal_raw
            self.edition = header.edition
            self.protocol_version = header.protocol_version or self.protocol_version
        self.peer_terminal = header.terminal

    def _on_message(self, header: Header, message: Message) -> None:
        answered: int | None = None
        if isinstance(
            message,
            TerminalGeneralResponse
            | PlatformGeneralResponse
            | RegisterResponse
            | LocationQueryReply
            | VehicleControlReply
            | ParametersReply,
        ):
            answered = message.answer_serial
        if answered is not None:
            self._pending.pop(answered, None)
        if isinstance(message, ResendRequest):
            self._resend_packets(message)

    def _resend_packets(self, request: ResendRequest) -> None:
        for (first_serial, _), frames in self._sent_packets.items():
            if first_serial == request.original_serial:
                wanted = request.packet_indexes or tuple(range(1, len(frames) + 1))
                self._out.extend(frames[i - 1] for i in wanted if 1 <= i <= len(frames))
                return

    # ------------------------------------------------------------------ sending

    def reserve_serials(self, count: int) -> int:
        """Takes `count` consecutive serials for frames encoded elsewhere (batch acks)."""
        first = self._serial
        self._serial = (self._serial + count) & 0xFFFF
        return first

    def next_serial(self) -> int:
        serial = self._serial
        self._serial = (self._serial + 1) & 0xFFFF
        return serial

    def send(self, message: Message, *, now_s: float | None = None) -> int:
        """Queues `message` for the peer and returns its serial (the first, if sub-packaged).

        With `now_s`, a message that expects an answer is retried on `check_timeouts` with the
        JT808 back-off (T, 2T, 6T, ...) until answered or `max_retries` is spent.
        """
        if self.terminal is None:
            raise Jt808UsageError("the peer's terminal id is not known yet: receive first")
        serial = self._serial
        frames = encode_frames(
            message,
            terminal=self.terminal,
            serial=serial,
            edition=self.edition,
            protocol_version=self.protocol_version,
        )
        self._serial = (self._serial + len(frames)) & 0xFFFF
        self._out.extend(frames)
        msg_id = int(message.MSG_ID)
        if len(frames) > 1:
            self._sent_packets[(serial, msg_id)] = frames
            while len(self._sent_packets) > 4:
                del self._sent_packets[next(iter(self._sent_packets))]
        if now_s is not None and msg_id not in _ANSWERS:
            self._pending[serial] = _Pending(
                msg_id, frames, now_s + self.reply_timeout_s, self.reply_timeout_s, 0
            )
        return serial

    def answer(self, header: Header, result: int = 0) -> int:
        """Sends the general response (0x8001 or 0x0001, by role) to a received message."""
        response: Message
        if self.role is Role.PLATFORM:
            response = PlatformGeneralResponse(header.serial, header.msg_id, result)
        else:
            response = TerminalGeneralResponse(header.serial, header.msg_id, result)
        return self.send(response)

    def answer_serials(self, serials: list[int], msg_id: int, result: int = 0) -> bytes:
        """General responses to many received frames at once (the gateway's batch of acks),
        returned as bytes to write rather than queued."""
        if self.terminal is None:
            raise Jt808UsageError("the peer's terminal id is not known yet: receive first")
        response = (
            PlatformGeneralResponse if self.role is Role.PLATFORM else TerminalGeneralResponse
        )
        out = []
        for serial in serials:
            out.extend(
                encode_frames(
                    response(serial, msg_id, result),
                    terminal=self.terminal,
                    serial=self._serial,
                    edition=self.edition,
                    protocol_version=self.protocol_version,
                )
            )
            self._serial = (self._serial + 1) & 0xFFFF
        return b"".join(out)

    def data_to_send(self) -> bytes:
        """Everything queued for the peer, in order; empties the queue."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    @property
    def awaiting_reply(self) -> int:
        return len(self._pending)

    def cancel_retry(self, serial: int) -> None:
        """Stops retrying the message of `serial` (its sender gave up waiting)."""
        self._pending.pop(serial, None)

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """When `check_timeouts` next has work: a retry, or a sub-packaged message overdue."""
        deadline = self._reassembler.next_deadline()
        for pending in self._pending.values():
            if deadline is None or pending.deadline_s < deadline:
                deadline = pending.deadline_s
        return deadline

    def check_timeouts(self, now_s: float) -> None:
        """Retransmits unanswered messages that are due and asks for missing packets."""
        for serial, pending in list(self._pending.items()):
            if now_s < pending.deadline_s:
                continue
            if pending.attempt >= self.max_retries:
                del self._pending[serial]
                self._events.append(ReplyTimedOut(serial, pending.msg_id))
                continue
            pending.attempt += 1
            pending.timeout_s *= pending.attempt + 1
            pending.deadline_s = now_s + pending.timeout_s
            self._out.extend(pending.frames)
        for overdue in self._reassembler.overdue(now_s):
            if overdue.give_up or self.role is Role.TERMINAL:
                self._events.append(
                    PacketsAbandoned(overdue.msg_id, overdue.first_serial, overdue.missing)
                )
            else:
                # The count is a BYTE in 2013 and the body must fit one frame in 2019: ask for
                # the first missing packets now, the rest on the next timeout.
                limit = 500 if self.edition is Edition.V2019 else 255
                missing = overdue.missing[:limit]
                self.send(ResendRequest(overdue.first_serial, missing, self.edition))
