"""LinkSession: the platform's link policy over plain bytes and numbers, no socket, no clock."""

from __future__ import annotations

from typing import Any

from ingest.jt808.codec import decode_frame
from ingest.jt808.framing import FrameSplitter
from ingest.jt808.link import LinkSession
from ingest.jt808.link_events import (
    Authenticated,
    AuthenticationRequested,
    BatchReceived,
    Closed,
    CommandAnswered,
    CommandFailed,
    LoggedOut,
    RegistrationRequested,
    ReportsReceived,
)
from ingest.jt808.link_state import LinkState
from ingest.jt808.messages import (
    BatchLocationReport,
    Deregister,
    Heartbeat,
    PlatformGeneralResponse,
    QueryParameters,
    RegisterResponse,
    ResendRequest,
    TerminalGeneralResponse,
)
from tests.support.link import HANDSHAKE_S, IDLE_S, REPORT, T0, Peer, drain, feed, reach


def sent(session: LinkSession) -> list[Any]:
    """The messages the session wrote, decoded."""
    data = session.data_to_send()
    return [decode_frame(b"\x7e" + p + b"\x7e").body for p in FrameSplitter().feed(data)]


def test_registration_and_authentication_are_decided_outside_and_answered_inside() -> None:
    session, peer = LinkSession(T0), Peer()
    [*_, asked] = feed(session, peer.register())
    assert isinstance(asked, RegistrationRequested) and asked.header.terminal == "013900000001"
    assert session.state is LinkState.REGISTERING
    assert session.registration_decided(0, "s3cret")
    assert not session.registration_decided(0, "again")  # nothing pending: refused
    [answer] = sent(session)
    assert isinstance(answer, RegisterResponse) and answer.auth_code == "s3cret"
    [*_, auth] = feed(session, peer.authenticate("s3cret"))
    assert isinstance(auth, AuthenticationRequested) and auth.message.auth_code == "s3cret"
    assert session.authentication_decided(True)
    assert drain(session) == [Authenticated("013900000001")]
    assert session.state is LinkState.AUTHENTICATED and session.terminal == "013900000001"
    [ok] = sent(session)
    assert isinstance(ok, PlatformGeneralResponse) and ok.result == 0


def test_a_run_of_reports_comes_out_as_one_event_only_once_authenticated() -> None:
    session, peer = reach(LinkState.REGISTERED)
    events = feed(session, peer.report() + peer.report())
    assert not any(isinstance(e, ReportsReceived) for e in events)
    assert [m.result for m in sent(session)] == [1, 1]  # refused, answered as failed
    assert session.errors == 2
    session, peer = reach(LinkState.AUTHENTICATED)
    events = feed(session, peer.report() + peer.report() + peer.report(), T0 + 5)
    [reports] = events
    assert isinstance(reports, ReportsReceived) and len(reports.payloads) == 3
    assert reports.received_s == T0 + 5
    batch = feed(session, peer.frame(BatchLocationReport(1, (REPORT, REPORT))), T0 + 6)
    assert isinstance(batch[-1], BatchReceived) and len(batch[-1].report.items) == 2


def test_a_connection_that_never_authenticates_closes_at_the_deadline_whatever_it_sends() -> None:
    session, peer = LinkSession(T0, handshake_timeout_s=HANDSHAKE_S), Peer()
    assert session.next_deadline() == T0 + HANDSHAKE_S
    feed(session, b"\x00garbage\x7e\x01\x02\x7e", T0 + 10)
    feed(session, peer.frame(Heartbeat()), T0 + 20)  # refused before authentication
    feed(session, peer.register(), T0 + 25)  # even a registration does not move it
    assert session.next_deadline() == T0 + HANDSHAKE_S
    session.handle_timer(T0 + HANDSHAKE_S - 0.001)
    assert session.state is LinkState.REGISTERING
    session.handle_timer(T0 + HANDSHAKE_S)
    assert drain(session) == [Closed("handshake timeout")]
    assert session.next_deadline() is None


def test_only_accepted_frames_move_the_idle_deadline() -> None:
    session, peer = reach(LinkState.AUTHENTICATED)
    assert session.next_deadline() == T0 + IDLE_S
    feed(session, peer.bad_frame(), T0 + 100)
    assert session.next_deadline() == T0 + IDLE_S
    feed(session, peer.frame(Heartbeat()), T0 + 200)
    assert session.next_deadline() == T0 + 200 + IDLE_S
    session.handle_timer(T0 + 200 + IDLE_S)
    assert drain(session) == [Closed("idle")]


def test_deregistering_logs_out_and_restarts_the_handshake_clock() -> None:
    session, peer = reach(LinkState.AUTHENTICATED)
    events = feed(session, peer.frame(Deregister()), T0 + 50)
    assert LoggedOut("013900000001", deregistered=True) in events
    assert session.state is LinkState.AWAIT_AUTH and session.terminal is None
    assert session.next_deadline() == T0 + 50 + HANDSHAKE_S


def test_no_packet_is_held_before_authentication_and_overdue_ones_are_asked_for() -> None:
    session, peer = reach(LinkState.REGISTERED)
    feed(session, peer.first_packet())
    assert session.conn.next_deadline() is None  # nothing held
    assert [m.result for m in sent(session)] == [1]
    session, peer = LinkSession(T0, reassembly_timeout_s=5.0), Peer()
    feed(session, peer.register())
    session.registration_decided(0, "code")
    feed(session, peer.authenticate())
    session.authentication_decided(True)
    drain(session)
    sent(session)
    session.timers_moved()
    feed(session, peer.first_packet(), T0 + 1)
    assert session.timers_moved()  # a group is held: its deadline is earlier than idle
    assert session.next_deadline() == T0 + 6
    session.handle_timer(T0 + 6)
    [request] = sent(session)
    assert isinstance(request, ResendRequest) and request.packet_indexes == (2, 3)


def test_commands_are_answered_timed_out_or_failed_by_the_close() -> None:
    session, peer = reach(LinkState.AUTHENTICATED)
    assert reach(LinkState.REGISTERED)[0].send_command(QueryParameters(), T0, 5.0) is None
    first = session.send_command(QueryParameters(), T0, 5.0)
    assert first is not None and session.timers_moved()
    assert session.next_deadline() == T0 + 5.0
    sent(session)
    reply = peer.frame(TerminalGeneralResponse(first, 0x8104, 0))
    assert CommandAnswered(first, TerminalGeneralResponse(first, 0x8104, 0)) in feed(session, reply)
    second = session.send_command(QueryParameters(), T0, 5.0)
    third = session.send_command(QueryParameters(), T0 + 1, 30.0)
    session.handle_timer(T0 + 5.0)
    assert drain(session) == [CommandFailed(second, "timeout")]  # type: ignore[arg-type]
    session.close("peer gone")
    assert drain(session) == [CommandFailed(third, "closed"), Closed("peer gone")]  # type: ignore[arg-type]


def test_too_many_bad_frames_close_the_link() -> None:
    session, peer = reach(LinkState.AUTHENTICATED)
    events = feed(session, b"".join(peer.bad_frame() for _ in range(25)))
    assert events[-1] == Closed("20 bad frames")
    assert session.state is LinkState.CLOSED


def test_a_frame_past_the_size_limit_is_a_stream_fault() -> None:
    session = LinkSession(T0, max_frame_bytes=256)
    events = feed(session, b"\x7e" + b"\x01" * 300)
    assert isinstance(events[-1], Closed) and events[-1].reason.startswith("stream fault")


def test_a_session_held_by_another_gateway_is_adopted_only_where_no_decision_is_pending() -> None:
    from ingest.jt808.link_events import Authenticated
    from ingest.jt808.link_state import LinkState
    from tests.support.link import T0, drain, feed, reach

    session, peer = reach(LinkState.AWAIT_AUTH)
    assert session.adopt("013900000001", T0 + 5)
    assert session.state is LinkState.AUTHENTICATED and session.terminal == "013900000001"
    assert drain(session) == [Authenticated("013900000001")]
    assert session.last_rx == T0 + 5
    events = feed(session, peer.report(), T0 + 6)  # reports flow at once
    assert [type(e).__name__ for e in events] == ["ReportsReceived"]
    for state in (LinkState.REGISTERING, LinkState.AUTHENTICATING, LinkState.CLOSED):
        waiting, _ = reach(state)
        assert not waiting.adopt("013900000001", T0 + 5)
        assert waiting.state is state
    registered, _ = reach(LinkState.REGISTERED)
    assert registered.adopt("013900000001", T0 + 5)
