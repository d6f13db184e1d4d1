"""Drives a `LinkSession` by hand: a terminal peer that encodes frames, and one concrete stimulus
per input of the transition table, so tests can put a session in any state and apply any input."""

from __future__ import annotations

from ingest.jt808 import Jt808Connection, LocationReport, Role
from ingest.jt808.link import LinkSession
from ingest.jt808.link_events import LinkEvent
from ingest.jt808.link_state import Input, LinkState
from ingest.jt808.messages import (
    Authenticate,
    BatchLocationReport,
    Deregister,
    Heartbeat,
    Message,
    PassThrough,
    QueryParameters,
    Register,
)

TERMINAL = "13900000001"
T0 = 1000.0
HANDSHAKE_S = 30.0
IDLE_S = 600.0
MAX_ERRORS = 20
REPORT = LocationReport.at(lon=121.5, lat=31.2, time_ms=1_704_081_600_000)
BIG = PassThrough(0x41, bytes(range(256)) * 9)  # three packets


def new_session(now: float = T0, **kwargs: float) -> LinkSession:
    settings = {
        "handshake_timeout_s": HANDSHAKE_S,
        "idle_timeout_s": IDLE_S,
        "max_errors": MAX_ERRORS,
        **kwargs,
    }
    return LinkSession(now, **settings)  # type: ignore[arg-type]


class Peer:
    """The terminal's side: frames to feed a session."""

    def __init__(self, terminal: str = TERMINAL) -> None:
        self.conn = Jt808Connection(Role.TERMINAL, terminal=terminal)

    def frame(self, message: Message) -> bytes:
        self.conn.send(message)
        return self.conn.data_to_send()

    def register(self) -> bytes:
        return self.frame(Register(31, 0, "M", "X", "ID", 1, "P"))

    def authenticate(self, code: str = "code") -> bytes:
        return self.frame(Authenticate(code))

    def report(self) -> bytes:
        return self.frame(REPORT)

    def bad_frame(self) -> bytes:
        frame = bytearray(self.frame(Heartbeat()))
        frame[-2] ^= 0x55  # the check code no longer agrees
        return bytes(frame)

    def first_packet(self) -> bytes:
        self.conn.send(BIG)
        data = self.conn.data_to_send()
        return data[: data.index(b"\x7e", 1) + 1]


def drain(session: LinkSession) -> list[LinkEvent]:
    events = []
    while (event := session.next_event()) is not None:
        events.append(event)
    return events


def feed(session: LinkSession, data: bytes, now: float = T0) -> list[LinkEvent]:
    session.receive_data(data, now)
    return drain(session)


def reach(state: LinkState, now: float = T0) -> tuple[LinkSession, Peer]:
    """A fresh session brought to `state` by the shortest path."""
    session, peer = new_session(now), Peer()
    if state is LinkState.CLOSED:
        session.close("test")
    if state in (LinkState.REGISTERING, LinkState.REGISTERED):
        feed(session, peer.register(), now)
    if state is LinkState.REGISTERED:
        session.registration_decided(0, "code")
    if state in (LinkState.AUTHENTICATING, LinkState.AUTHENTICATED):
        feed(session, peer.authenticate(), now)
    if state is LinkState.AUTHENTICATED:
        session.authentication_decided(True)
    drain(session)
    session.data_to_send()  # what it answered on the way
    assert session.state is state
    return session, peer


def apply(session: LinkSession, peer: Peer, event: Input, now: float = T0) -> list[LinkEvent]:
    """Applies `event` to the session the way the world would; returns the events it gave."""
    if event is Input.REGISTER:
        return feed(session, peer.register(), now)
    if event is Input.AUTHENTICATE:
        return feed(session, peer.authenticate(), now)
    if event is Input.REGISTER_ACCEPTED:
        session.registration_decided(0, "code")
    elif event is Input.REGISTER_REFUSED:
        session.registration_decided(1)
    elif event is Input.REGISTER_DEFERRED:
        session.registration_deferred()
    elif event is Input.AUTH_ACCEPTED:
        session.authentication_decided(True)
    elif event is Input.AUTH_REFUSED:
        session.authentication_decided(False)
    elif event is Input.REPORT:
        return feed(session, peer.report() + peer.frame(BatchLocationReport(0, (REPORT,))), now)
    elif event is Input.MESSAGE:
        return feed(session, peer.frame(Heartbeat()), now)
    elif event is Input.PACKET:
        return feed(session, peer.first_packet(), now)
    elif event is Input.DEREGISTER:
        return feed(session, peer.frame(Deregister()), now)
    elif event is Input.BAD_FRAME:
        return feed(session, peer.bad_frame(), now)
    elif event is Input.COMMAND:
        session.send_command(QueryParameters(), now, 5.0)
    elif event is Input.HANDSHAKE_TIMEOUT:
        session.handle_timer(now + HANDSHAKE_S)
    elif event is Input.IDLE_TIMEOUT:
        session.handle_timer(now + IDLE_S)
    elif event is Input.TOO_MANY_ERRORS:
        return feed(session, b"".join(peer.bad_frame() for _ in range(MAX_ERRORS)), now)
    elif event is Input.STREAM_FAULT:
        return feed(session, b"\x7e" + b"\x01" * 5000, now)
    elif event is Input.CLOSE:
        session.close("test")
    elif event is Input.ADOPT:
        session.adopt(TERMINAL.rjust(12, "0"), now)  # as the header carries it
    return drain(session)
