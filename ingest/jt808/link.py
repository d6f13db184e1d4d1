"""`LinkSession`: the platform's policy for one terminal link, sans-IO.

Bytes (or whole frames) in with their time, events out (`next_event`), bytes out
(`data_to_send`), one timer: `next_deadline()` says when `handle_timer(now)` has work (handshake
deadline, idle timeout, overdue command answers, codec retries, overdue packets asked for with
0x8003). No clock, socket or store: the TCP shell, the MQTT bridge and the tests drive it alike.

What it may do in each state is `link_state.TABLE`. Decisions that need the registry come out
as events (`RegistrationRequested`, `AuthenticationRequested`) and go back in as calls
(`registration_decided`, `authentication_decided`); frames keep being read meanwhile and are
answered as the state allows. Before authentication, nothing is reassembled and no report is
handed on; frames that do not decode, and refused ones, count towards `max_errors` and never
move a timer: the handshake deadline runs from the opening (or a deregistration) whatever
arrives, and only an accepted frame moves the idle deadline.
"""

from __future__ import annotations

from collections import deque

from ingest.jt808.connection import Jt808Connection
from ingest.jt808.events import (
    Event,
    FrameRejected,
    MessageReceived,
    PacketReceived,
    PacketsAbandoned,
    ReplyTimedOut,
)
from ingest.jt808.framing import FrameSplitter, plain_location, whole_plain_location
from ingest.jt808.header import Header
from ingest.jt808.ids import Edition, MessageId, Result, Role
from ingest.jt808.link_events import (
    Authenticated,
    AuthenticationRequested,
    BatchReceived,
    Closed,
    CommandAnswered,
    CommandFailed,
    FrameCounted,
    LinkEvent,
    LoggedOut,
    RegistrationRequested,
    ReportsReceived,
)
from ingest.jt808.link_state import REFUSED, Input, LinkState, transition
from ingest.jt808.location import LocationReport
from ingest.jt808.messages import (
    Authenticate,
    BatchLocationReport,
    Deregister,
    LocationQueryReply,
    Message,
    ParametersReply,
    RawMessage,
    Register,
    RegisterResponse,
    TerminalGeneralResponse,
    VehicleControlReply,
)

# Messages that answer a platform command.
_REPLIES = (TerminalGeneralResponse, LocationQueryReply, ParametersReply, VehicleControlReply)
_LOCATION = MessageId.LOCATION_REPORT


class LinkSession:
    """One platform-side link: see the module docstring."""

    def __init__(
        self,
        now: float,
        *,
        handshake_timeout_s: float = 30.0,
        idle_timeout_s: float = 600.0,
        max_errors: int = 20,
        max_frame_bytes: int = 4096,
        reply_timeout_s: float = 10.0,
        reassembly_timeout_s: float = 30.0,
    ) -> None:
        self.state = LinkState.AWAIT_AUTH
        self.conn = Jt808Connection(
            Role.PLATFORM,
            max_frame_bytes=max_frame_bytes,
            reply_timeout_s=reply_timeout_s,
            reassembly_timeout_s=reassembly_timeout_s,
        )
        self.conn.reassemble = False
        self.handshake_timeout_s = handshake_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_errors = max_errors
        self.errors = 0
        self.terminal: str | None = None  # set while authenticated
        self.close_reason: str | None = None
        self._splitter = FrameSplitter(max_frame_bytes)
        self._inbox: list[bytes] = []
        self._at = 0  # next payload of _inbox to handle
        self._events: deque[LinkEvent] = deque()
        self._now = self._last_rx = now
        self._handshake_deadline = now + handshake_timeout_s
        self._deciding: Header | None = None  # the 0x0100 or 0x0102 awaiting its decision
        self._commands: dict[int, float] = {}  # serial -> answer deadline
        self._timers_moved = True

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from a stream; the frames in them become events through `next_event`."""
        if self.state is LinkState.CLOSED:
            return
        self._now = now
        payloads = self._splitter.feed(data)
        if payloads:
            if self._at >= len(self._inbox):
                self._inbox, self._at = payloads, 0
            else:
                self._inbox += payloads

    def take_whole_report(self, data: bytes, now: float) -> bool:
        """The hot path: True when `data` is one plain 0x0200 frame and the session is
        authenticated with nothing buffered: the caller queues it as `next_event` would have
        (flags and all). False leaves `data` for `receive_data`."""
        if (
            self.state is not LinkState.AUTHENTICATED
            or self._events
            or self._at < len(self._inbox)
            or not self._splitter.idle
            or not whole_plain_location(data)
        ):
            return False
        self._now = self._last_rx = now
        return True

    def receive_frame(self, frame: bytes, now: float) -> None:
        """One whole frame (a transport that keeps message boundaries, such as MQTT)."""
        if self.state is LinkState.CLOSED:
            return
        self._now = now
        payload = frame[1:-1] if frame[:1] == b"\x7e" and frame[-1:] == b"\x7e" else frame
        if payload:
            self._inbox.append(payload)

    def next_event(self) -> LinkEvent | None:
        """The next event, or None when everything received so far is handled."""
        while not self._events:
            inbox = self._inbox
            at = self._at
            if at >= len(inbox):
                if inbox:
                    self._inbox, self._at = [], 0
                if self._splitter.error is not None and self.state is not LinkState.CLOSED:
                    self._events.append(FrameCounted(0, "oversized"))
                    self._close(Input.STREAM_FAULT, f"stream fault: {self._splitter.error}")
                    continue
                return None
            if self.state is LinkState.AUTHENTICATED and plain_location(inbox[at]):
                end = at + 1
                while end < len(inbox) and plain_location(inbox[end]):
                    end += 1
                self._last_rx = self._now
                if at == 0 and end == len(inbox):  # the common case: hand the list over whole
                    self._inbox = []
                    return ReportsReceived(inbox, self._now)
                self._at = end
                return ReportsReceived(inbox[at:end], self._now)
            self._at = at + 1
            self.conn.receive_payload(inbox[at], self._now)
            for event in self.conn.events():
                self._on_codec_event(event)
        return self._events.popleft()

    @property
    def last_rx(self) -> float:  # when the session last accepted a frame (the clock of `now`)
        return self._last_rx

    # ------------------------------------------------------------------ decisions

    def registration_decided(self, result: int, auth_code: str = "") -> bool:
        """Answers the pending 0x0100 (0x8100 `result`, `auth_code` when 0); False when no
        registration is pending (the call is refused, nothing changes)."""
        header = self._deciding
        accepted = Input.REGISTER_ACCEPTED if result == 0 else Input.REGISTER_REFUSED
        if header is None or not self._apply(accepted):
            return False
        self._deciding = None
        self.conn.send(RegisterResponse(header.serial, result, auth_code if result == 0 else ""))
        if result != 0:
            self._count_error()
        return True

    def adopt(self, terminal: str, now: float) -> bool:
        """Authenticated with no handshake here: another gateway holds the session (a shared
        MQTT subscription deals a terminal's frames to each gateway of its group); False when
        the state refuses."""
        digits = terminal.rjust(12 if len(terminal) <= 12 else 20, "0")  # as headers carry it
        if not digits.isdigit() or len(digits) > 20 or self._deciding is not None:
            return False
        if not self._apply(Input.ADOPT):
            return False
        self.terminal, self.conn.terminal = digits, bytes.fromhex(digits)
        self.conn.edition = Edition.V2019 if len(digits) == 20 else Edition.V2013
        self._now = self._last_rx = now
        self._events.append(Authenticated(terminal))
        return True

    def registration_deferred(self) -> bool:
        """Leaves the pending 0x0100 unanswered (the terminal asks again); False when none."""
        if self._deciding is None or not self._apply(Input.REGISTER_DEFERRED):
            return False
        self._deciding = None
        return True

    def authentication_decided(self, ok: bool) -> bool:
        """Answers the pending 0x0102; False when no authentication is pending."""
        header = self._deciding
        if header is None or not self._apply(Input.AUTH_ACCEPTED if ok else Input.AUTH_REFUSED):
            return False
        self._deciding = None
        self.conn.answer(header, Result.OK if ok else Result.FAILED)
        if ok:
            self.terminal = header.terminal
            self._events.append(Authenticated(header.terminal))
        else:
            self._count_error()
        return True

    # ------------------------------------------------------------------ commands and output

    def send_command(self, message: Message, now: float, timeout_s: float) -> int | None:
        """Sends a platform command (retried with the JT808 back-off until answered); its
        answer or failure comes as an event. None when the state refuses commands."""
        if transition(self.state, Input.COMMAND) is REFUSED:
            return None
        serial = self.conn.send(message, now_s=now)
        self._commands[serial] = now + timeout_s
        self._timers_moved = True
        return serial

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()

    def answer_now(self, serial: int, msg_id: int, result: int) -> bytes:  # one 0x8001, as bytes
        return self.conn.answer_serials([serial], msg_id, result)

    def report_refused(self) -> None:  # a report the batch decoder could not use: a bad frame
        if self._apply(Input.BAD_FRAME):
            self._count_error()

    def close(self, reason: str) -> None:  # the platform closes or the peer went away
        self._close(Input.CLOSE, reason)

    # ------------------------------------------------------------------ the timer

    def next_deadline(self) -> float | None:
        """When `handle_timer` next has work; None once closed."""
        if self.state is LinkState.CLOSED:
            return None
        deadline = self._last_rx + self.idle_timeout_s
        if self.state is not LinkState.AUTHENTICATED:
            deadline = min(deadline, self._handshake_deadline)
        codec = self.conn.next_deadline()
        if codec is not None:
            deadline = min(deadline, codec)
        if self._commands:
            deadline = min(deadline, min(self._commands.values()))
        return deadline

    def timers_moved(self) -> bool:
        """True (once) when a deadline may have come earlier since the last call: a timer
        armed for the old `next_deadline()` would fire late. The idle deadline only moves
        later, so a shell may leave its timer armed while this says False."""
        moved, self._timers_moved = self._timers_moved, False
        return moved

    def handle_timer(self, now: float) -> None:
        """Does whatever is due at `now`; its results come as events and bytes."""
        if self.state is LinkState.CLOSED:
            return
        self._now = now
        self._timers_moved = True
        if self.state is not LinkState.AUTHENTICATED and now >= self._handshake_deadline:
            self._close(Input.HANDSHAKE_TIMEOUT, "handshake timeout")
            return
        if now >= self._last_rx + self.idle_timeout_s:
            self._close(Input.IDLE_TIMEOUT, "idle")
            return
        self.conn.check_timeouts(now)
        for event in self.conn.events():
            self._on_codec_event(event)
        for serial, deadline in list(self._commands.items()):
            if now >= deadline:
                del self._commands[serial]
                self.conn.cancel_retry(serial)
                self._events.append(CommandFailed(serial, "timeout"))

    # ------------------------------------------------------------------ internals

    def _apply(self, event: Input) -> bool:
        after = transition(self.state, event)
        if after is REFUSED:
            return False
        before, self.state = self.state, after
        if before is not after:
            self._timers_moved = True
            self.conn.reassemble = after is LinkState.AUTHENTICATED
            if before is LinkState.AUTHENTICATED and after is not LinkState.CLOSED:
                assert self.terminal is not None
                self._events.append(LoggedOut(self.terminal, event is Input.DEREGISTER))
                self.terminal = None
                self._handshake_deadline = self._now + self.handshake_timeout_s
        return True

    def _close(self, event: Input, reason: str) -> None:
        if not self._apply(event):
            return
        self.close_reason = reason
        self.terminal = None
        self._deciding = None
        self._inbox, self._at = [], 0
        for serial in self._commands:
            self._events.append(CommandFailed(serial, "closed"))
        self._commands.clear()
        self._events.append(Closed(reason))

    def _count_error(self) -> None:
        self.errors += 1
        if self.errors >= self.max_errors:
            self._close(Input.TOO_MANY_ERRORS, f"{self.errors} bad frames")

    def _refuse(self, header: Header | None, result: int = Result.FAILED) -> None:
        if header is not None and self.conn.terminal is not None:
            self.conn.answer(header, result)
        self._count_error()

    def _on_codec_event(self, event: Event) -> None:
        if self.state is LinkState.CLOSED:
            return
        if type(event) is MessageReceived:
            self._on_message(event.header, event.message)
        elif isinstance(event, FrameRejected):
            self._events.append(FrameCounted(0, event.code.value))
            if self._apply(Input.BAD_FRAME):
                self._refuse(event.header, Result.BAD_MESSAGE)
        elif isinstance(event, PacketReceived):
            if self._apply(Input.PACKET):
                self._timers_moved = True  # the codec may hold a new group, with its deadline
            else:  # no reassembly before authentication
                self._refuse(event.header)
        elif isinstance(event, ReplyTimedOut):
            if self._commands.pop(event.serial, None) is not None:
                self._events.append(CommandFailed(event.serial, "timeout"))
        elif isinstance(event, PacketsAbandoned):
            self._events.append(FrameCounted(event.msg_id, "packets_abandoned"))

    def _on_message(self, header: Header, message: Message) -> None:
        if isinstance(message, Register):
            self._request(Input.REGISTER, header, RegistrationRequested(header, message))
            return
        if isinstance(message, Authenticate):
            self._request(Input.AUTHENTICATE, header, AuthenticationRequested(header, message))
            return
        kind = (
            Input.REPORT
            if isinstance(message, BatchLocationReport | LocationReport)
            else Input.DEREGISTER
            if isinstance(message, Deregister)
            else Input.MESSAGE  # heartbeats, command replies, anything else
        )
        if header.terminal != self.terminal or not self._apply(kind):
            self._events.append(FrameCounted(header.msg_id, "refused"))
            self._refuse(header)
            return
        self._last_rx = self._now
        if kind is not Input.REPORT:
            self._events.append(FrameCounted(header.msg_id))
        if isinstance(message, BatchLocationReport):
            if message.items:
                self._events.append(BatchReceived(message, header.serial, header.msg_id, self._now))
            else:
                self.conn.answer(header, Result.OK)
        elif isinstance(message, LocationReport):  # a 0x0200 the payload path passed over
            report = BatchLocationReport(-1, (message,))
            self._events.append(BatchReceived(report, header.serial, _LOCATION, self._now))
        elif isinstance(message, _REPLIES):
            if self._commands.pop(message.answer_serial, None) is not None:
                self._events.append(CommandAnswered(message.answer_serial, message))
        elif isinstance(message, RawMessage):
            self.conn.answer(header, Result.UNSUPPORTED)
        else:  # heartbeat, deregistration, anything else known
            self.conn.answer(header, Result.OK)

    def _request(self, event: Input, header: Header, request: LinkEvent) -> None:
        if not self._apply(event):  # a decision is already pending
            self._events.append(FrameCounted(header.msg_id, "refused"))
            self._refuse(header)
            return
        self._last_rx = self._now
        self._events.append(FrameCounted(header.msg_id))
        self._deciding = header
        self._events.append(request)
