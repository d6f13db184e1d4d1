"""Jt808Connection: both roles over plain bytes, with retries, reassembly and stream faults."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.jt808.codec import decode_frame, encode_frame, encode_frames
from ingest.jt808.connection import Jt808Connection
from ingest.jt808.errors import Jt808ProtocolError, Jt808UsageError
from ingest.jt808.events import (
    FrameRejected,
    LocationFrameReceived,
    MessageReceived,
    PacketReceived,
    PacketsAbandoned,
    ReplyTimedOut,
)
from ingest.jt808.framing import FrameSplitter
from ingest.jt808.ids import Edition, ErrorCode, Role
from ingest.jt808.location import LocationReport
from ingest.jt808.messages import (
    Heartbeat,
    PassThrough,
    PlatformGeneralResponse,
    ResendRequest,
    SetParameters,
    TerminalGeneralResponse,
)
from tests.support.jt808_strategies import escape_by_hand, header_2013, seal_by_hand, xor_of

T13 = "013912345678"
T19 = "00000000013912345678"
TIME_MS = 1_704_081_600_000
REPORT = LocationReport.at(lon=121.5, lat=31.2, time_ms=TIME_MS)
BIG = PassThrough(0x41, bytes(range(256)) * 9)  # 2305-byte body: three packets


def _frames(data: bytes) -> list[bytes]:
    """The frames in a chunk of outgoing bytes, flags restored."""
    return [b"\x7e" + p + b"\x7e" for p in FrameSplitter().feed(data)]


def _decoded(data: bytes) -> list[Any]:
    return [decode_frame(f) for f in _frames(data)]


def _received(event: object) -> MessageReceived:
    assert isinstance(event, MessageReceived), event
    return event


def _packet(event: object) -> PacketReceived:
    assert isinstance(event, PacketReceived), event
    return event


def _terminal(edition: Edition = Edition.V2013, **kwargs: Any) -> Jt808Connection:
    return Jt808Connection(
        Role.TERMINAL, terminal=T19 if edition is Edition.V2019 else T13, edition=edition, **kwargs
    )


# ---------------------------------------------------------------- basics


def test_a_terminal_connection_needs_its_terminal_id() -> None:
    with pytest.raises(Jt808UsageError):
        Jt808Connection(Role.TERMINAL)


def test_a_platform_cannot_send_before_it_knows_the_terminal() -> None:
    with pytest.raises(Jt808UsageError, match="receive first"):
        Jt808Connection(Role.PLATFORM).send(SetParameters(()))


def test_serials_count_up_from_zero_and_packets_take_one_each() -> None:
    device = _terminal()
    assert device.send(Heartbeat()) == 0
    assert device.send(BIG) == 1
    assert device.send(Heartbeat()) == 4
    serials = [f.header.serial for f in _decoded(device.data_to_send())]
    assert serials == [0, 1, 2, 3, 4]
    assert device.data_to_send() == b""


def test_serials_wrap_after_65535() -> None:
    device = _terminal()
    for _ in range(65535):
        device.next_serial()
    assert device.send(Heartbeat()) == 65535
    assert device.send(Heartbeat()) == 0


def test_answer_sends_the_general_response_of_the_role() -> None:
    device, platform = _terminal(), Jt808Connection(Role.PLATFORM)
    serial = device.send(REPORT)
    platform.receive_data(device.data_to_send())
    (event,) = platform.events()
    assert isinstance(event, MessageReceived)
    platform.answer(event.header, result=0)
    device.receive_data(platform.data_to_send())
    (answer,) = device.events()
    assert isinstance(answer, MessageReceived)
    assert answer.message == PlatformGeneralResponse(serial, 0x0200, 0)
    device.answer(answer.header, result=3)
    (back,) = _decoded(device.data_to_send())
    assert back.body == TerminalGeneralResponse(answer.header.serial, 0x8001, 3)


def test_receive_frame_takes_one_whole_frame_with_or_without_flags() -> None:
    platform = Jt808Connection(Role.PLATFORM)
    frame = encode_frame(REPORT, terminal=T13, serial=3)
    platform.receive_frame(frame)
    platform.receive_frame(frame[1:-1])
    events = platform.events()
    assert [type(e) for e in events] == [MessageReceived, MessageReceived]
    assert all(_received(e).message == REPORT for e in events)
    assert platform.frames_received == 2


# ---------------------------------------------------------------- bad frames


def test_a_bad_frame_becomes_an_event_and_the_stream_resyncs_at_the_next_flag() -> None:
    platform = Jt808Connection(Role.PLATFORM)
    good = encode_frame(REPORT, terminal=T13, serial=1)
    content = header_2013(0x0002, 0, T13, 1)
    bad = b"\x7e" + escape_by_hand(content + bytes((xor_of(content) ^ 1,))) + b"\x7e"
    platform.receive_data(b"noise" + bad + good)
    rejected, received = platform.events()
    assert isinstance(rejected, FrameRejected)
    assert rejected.code is ErrorCode.BAD_CHECKSUM
    assert rejected.raw == bad[1:-1]
    assert rejected.header is None
    assert isinstance(received, MessageReceived)
    assert platform.frames_rejected == 1
    assert platform.frames_received == 1


def test_a_bad_body_is_rejected_with_its_sound_header() -> None:
    platform = Jt808Connection(Role.PLATFORM)
    platform.receive_data(seal_by_hand(header_2013(0x8001, 2, T13, 9) + b"\x00\x01"))
    (event,) = platform.events()
    assert isinstance(event, FrameRejected)
    assert event.code is ErrorCode.BAD_BODY
    assert event.header is not None
    assert event.header.serial == 9


def test_an_unknown_message_is_received_raw_with_its_error() -> None:
    platform = Jt808Connection(Role.PLATFORM)
    platform.receive_data(seal_by_hand(header_2013(0x0F01, 1, T13, 9) + b"\x01"))
    (event,) = platform.events()
    assert isinstance(event, MessageReceived)
    assert event.error is ErrorCode.UNKNOWN_MESSAGE
    assert event.message.encode_body() == b"\x01"


def test_oversized_input_raises_a_protocol_error_after_the_earlier_events() -> None:
    platform = Jt808Connection(Role.PLATFORM, max_frame_bytes=200)
    good = encode_frame(REPORT, terminal=T13, serial=1)
    platform.receive_data(good + b"\x7e" + b"\x01" * 150)
    platform.receive_data(b"\x01" * 100 + good)
    event = platform.next_event()
    assert isinstance(event, MessageReceived)
    assert platform.broken is not None
    with pytest.raises(Jt808ProtocolError):
        platform.next_event()
    platform.receive_data(good)
    with pytest.raises(Jt808ProtocolError):
        platform.events()


def test_events_returns_what_is_queued_before_raising_the_fault() -> None:
    platform = Jt808Connection(Role.PLATFORM, max_frame_bytes=100)
    good = encode_frame(REPORT, terminal=T13, serial=1)
    platform.receive_data(good + good + b"\x7e" + b"\x01" * 101)
    assert len(platform.events()) == 2
    with pytest.raises(Jt808ProtocolError):
        platform.events()


# ---------------------------------------------------------------- what the platform learns


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
def test_the_platform_answers_in_the_edition_and_terminal_id_it_received(edition: Edition) -> None:
    device = _terminal(edition, protocol_version=3)
    platform = Jt808Connection(Role.PLATFORM)
    device.send(REPORT)
    platform.receive_data(device.data_to_send())
    (event,) = platform.events()
    assert platform.edition is edition
    assert platform.peer_terminal == (T19 if edition is Edition.V2019 else T13)
    platform.answer(_received(event).header)
    platform.send(SetParameters(((0x0029, b"\x00\x00\x00\x1e"),)))
    for frame in _decoded(platform.data_to_send()):
        assert frame.header.edition is edition
        assert frame.header.terminal == _received(event).header.terminal
        if edition is Edition.V2019:
            assert frame.header.protocol_version == 3


def test_a_terminal_mixing_layouts_is_answered_in_the_layout_that_fitted() -> None:
    platform = Jt808Connection(Role.PLATFORM)
    flagged_2013 = header_2013(0x0002, 0, T13, 4, props=1 << 14)
    platform.receive_data(seal_by_hand(flagged_2013))
    (event,) = platform.events()
    assert isinstance(event, MessageReceived)
    assert event.header.edition is Edition.V2013
    platform.answer(_received(event).header)
    (frame,) = _frames(platform.data_to_send())
    assert len(frame) == 1 + 12 + 5 + 1 + 1  # a 2013 header, no version byte
    assert decode_frame(frame).header.edition is Edition.V2013


def test_a_binary_terminal_id_is_answered_with_the_same_bytes() -> None:
    raw = bytes.fromhex("20769c7b6d5c")
    platform = Jt808Connection(Role.PLATFORM)
    platform.receive_data(seal_by_hand(header_2013(0x0002, 0, "20769c7b6d5c", 4)))
    (event,) = platform.events()
    assert platform.peer_terminal == "356938035643809"
    platform.answer(_received(event).header)
    (frame,) = _decoded(platform.data_to_send())
    assert frame.header.terminal_raw == raw


# ---------------------------------------------------------------- retries


def test_an_unanswered_message_is_retried_after_t_then_2t_then_6t_then_times_out() -> None:
    device = _terminal(reply_timeout_s=10.0, max_retries=3)
    serial = device.send(REPORT, now_s=0.0)
    sent = device.data_to_send()
    schedule = [(9.9, False), (10.0, True), (29.9, False), (30.0, True), (89.9, False),
                (90.0, True), (329.9, False)]  # fmt: skip
    for now_s, resent in schedule:
        device.check_timeouts(now_s)
        assert device.data_to_send() == (sent if resent else b""), now_s
        assert device.events() == []
    device.check_timeouts(330.0)
    assert device.data_to_send() == b""
    assert device.events() == [ReplyTimedOut(serial, 0x0200)]
    assert device.awaiting_reply == 0
    device.check_timeouts(10_000.0)
    assert device.events() == []


def test_the_matching_answer_stops_the_retries() -> None:
    device = _terminal(reply_timeout_s=10.0)
    platform = Jt808Connection(Role.PLATFORM)
    device.send(Heartbeat(), now_s=0.0)
    serial = device.send(REPORT, now_s=0.0)
    platform.receive_data(device.data_to_send())
    _, report = platform.events()
    platform.answer(_received(report).header)
    device.receive_data(platform.data_to_send())
    device.events()
    assert device.awaiting_reply == 1
    device.check_timeouts(10.0)
    (retried,) = _decoded(device.data_to_send())
    assert retried.header.serial == serial - 1
    assert isinstance(retried.body, Heartbeat)


def test_an_answer_to_another_serial_does_not_stop_the_retries() -> None:
    device = _terminal(reply_timeout_s=10.0)
    device.send(REPORT, now_s=0.0)
    sent = device.data_to_send()
    device.receive_data(encode_frame(PlatformGeneralResponse(5, 0x0200, 0), terminal=T13, serial=0))
    device.events()
    device.check_timeouts(10.0)
    assert device.data_to_send() == sent


def test_answers_and_messages_sent_without_a_clock_are_never_retried() -> None:
    device = _terminal(reply_timeout_s=1.0)
    device.send(TerminalGeneralResponse(1, 0x8103, 0), now_s=0.0)
    device.send(REPORT)
    device.data_to_send()
    assert device.awaiting_reply == 0
    device.check_timeouts(100.0)
    assert device.data_to_send() == b""
    assert device.events() == []


def test_a_sub_packaged_message_is_retried_whole() -> None:
    device = _terminal(reply_timeout_s=5.0)
    device.send(BIG, now_s=0.0)
    sent = device.data_to_send()
    device.check_timeouts(5.0)
    assert device.data_to_send() == sent
    assert len(_frames(sent)) == 3


# ---------------------------------------------------------------- sub-packages


def _split_big(edition: Edition = Edition.V2013) -> tuple[Jt808Connection, list[bytes]]:
    device = _terminal(edition)
    device.send(Heartbeat())
    device.send(BIG)
    frames = _frames(device.data_to_send())[1:]
    assert len(frames) == 3
    return device, frames


def test_the_platform_reassembles_packets_and_reports_each_one() -> None:
    _, frames = _split_big()
    platform = Jt808Connection(Role.PLATFORM)
    platform.receive_data(frames[2] + frames[0] + frames[1])
    events = platform.events()
    assert [type(e) for e in events] == [PacketReceived] * 3 + [MessageReceived]
    assert [_packet(e).header.packet_index for e in events[:3]] == [3, 1, 2]
    assert _received(events[-1]).message == BIG
    assert _received(events[-1]).header.serial == 1


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
def test_a_resend_request_makes_the_terminal_send_exactly_the_packets_asked(
    edition: Edition,
) -> None:
    device, frames = _split_big(edition)
    platform = Jt808Connection(Role.PLATFORM)
    platform.receive_data(frames[1])
    platform.events()
    platform.send(ResendRequest(1, (3, 1), edition))
    device.receive_data(platform.data_to_send())
    (event,) = device.events()
    assert isinstance(_received(event).message, ResendRequest)
    assert device.data_to_send() == frames[2] + frames[0]


def test_a_resend_request_for_an_unknown_message_sends_nothing() -> None:
    device, _ = _split_big()
    device.receive_data(encode_frame(ResendRequest(999, (1,)), terminal=T13, serial=0))
    device.events()
    assert device.data_to_send() == b""


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
def test_missing_packets_are_requested_after_the_timeout_and_then_arrive(
    edition: Edition,
) -> None:
    device, frames = _split_big(edition)
    platform = Jt808Connection(Role.PLATFORM, reassembly_timeout_s=30.0)
    platform.receive_data(frames[0] + frames[2], now_s=0.0)
    assert [type(e) for e in platform.events()] == [PacketReceived, PacketReceived]
    platform.check_timeouts(29.0)
    assert platform.data_to_send() == b""
    platform.check_timeouts(30.0)
    request = platform.data_to_send()
    (decoded,) = _decoded(request)
    assert decoded.body == ResendRequest(1, (2,), edition)
    assert decoded.header.edition is edition
    device.receive_data(request, now_s=31.0)
    device.events()
    platform.receive_data(device.data_to_send(), now_s=31.0)
    packet, done = platform.events()
    assert isinstance(packet, PacketReceived)
    assert isinstance(done, MessageReceived)
    assert done.message == BIG


def test_packets_still_missing_after_the_requests_are_abandoned() -> None:
    _, frames = _split_big()
    platform = Jt808Connection(Role.PLATFORM, reassembly_timeout_s=30.0)
    platform.receive_data(frames[0], now_s=0.0)
    platform.events()
    requests = []
    for now_s in (30.0, 60.0):
        platform.check_timeouts(now_s)
        requests += [f.body for f in _decoded(platform.data_to_send())]
        assert platform.events() == []
    assert requests == [ResendRequest(1, (2, 3))] * 2
    platform.check_timeouts(90.0)
    assert platform.data_to_send() == b""
    assert platform.events() == [PacketsAbandoned(0x0900, 1, (2, 3))]


def test_a_terminal_abandons_missing_packets_without_requesting_them() -> None:
    device = _terminal(reassembly_timeout_s=10.0)
    frames = encode_frames(BIG, terminal=T13, serial=40)
    device.receive_data(frames[0], now_s=0.0)
    device.events()
    device.check_timeouts(10.0)
    assert device.data_to_send() == b""
    assert device.events() == [PacketsAbandoned(0x0900, 40, (2, 3))]


# ---------------------------------------------------------------- batch-path hooks


def test_with_location_payloads_a_0200_frame_is_handed_over_undecoded() -> None:
    platform = Jt808Connection(Role.PLATFORM, location_payloads=True)
    frame = encode_frame(REPORT, terminal=T13, serial=1)
    platform.receive_data(frame + encode_frame(Heartbeat(), terminal=T13, serial=2))
    located, heartbeat = platform.events()
    assert located == LocationFrameReceived(frame[1:-1])
    assert isinstance(heartbeat, MessageReceived)
    assert platform.frames_received == 2


def test_with_location_payloads_a_sub_packaged_0200_still_takes_the_full_path() -> None:
    big = LocationReport.at(lon=121.5, lat=31.2, time_ms=TIME_MS, extras=((0xE1, bytes(250)),) * 5)
    frames = encode_frames(big, terminal=T13, serial=1)
    assert len(frames) == 2
    platform = Jt808Connection(Role.PLATFORM, location_payloads=True)
    platform.receive_data(b"".join(frames))
    events = platform.events()
    assert [type(e) for e in events] == [PacketReceived, PacketReceived, MessageReceived]
    assert _received(events[-1]).message == big


def test_answer_serials_acknowledges_many_frames_with_consecutive_own_serials() -> None:
    platform = Jt808Connection(Role.PLATFORM)
    platform.receive_data(encode_frame(Heartbeat(), terminal=T13, serial=7))
    platform.events()
    platform.send(Heartbeat())
    platform.data_to_send()
    out = platform.answer_serials([7, 8, 65535], 0x0200)
    decoded = _decoded(out)
    assert [d.body for d in decoded] == [
        PlatformGeneralResponse(7, 0x0200, 0),
        PlatformGeneralResponse(8, 0x0200, 0),
        PlatformGeneralResponse(65535, 0x0200, 0),
    ]
    assert [d.header.serial for d in decoded] == [1, 2, 3]
    assert all(d.header.terminal == T13 for d in decoded)
    assert platform.data_to_send() == b""
    assert platform.send(Heartbeat()) == 4


@pytest.mark.parametrize("count", [256, 300, 65535])
def test_a_peer_declaring_hundreds_of_packets_never_makes_the_timer_raise(count: int) -> None:
    """The packet count is the peer's data: however many packets are missing, the 2013 request
    (a BYTE count) is capped or the group abandoned, never a local usage error."""
    platform = Jt808Connection(Role.PLATFORM, reassembly_timeout_s=30.0)
    head = header_2013(0x0900, 3, T13, 5, props=1 << 13)
    platform.receive_data(seal_by_hand(head + count.to_bytes(2, "big") + b"\x00\x01abc"))
    platform.events()
    for now_s in (30.0, 60.0, 90.0):
        platform.check_timeouts(now_s)
        for frame in _decoded(platform.data_to_send()):
            assert isinstance(frame.body, ResendRequest)
            assert 0 < len(frame.body.packet_indexes) <= 255
    assert [type(e) for e in platform.events()] == [PacketsAbandoned]


def test_reserved_serials_are_skipped_by_the_next_message_and_wrap() -> None:
    device = _terminal()
    device.send(Heartbeat())
    assert device.reserve_serials(3) == 1
    assert device.send(Heartbeat()) == 4
    assert device.reserve_serials(65535) == 5
    assert device.send(Heartbeat()) == 4
