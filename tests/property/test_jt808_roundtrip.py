"""Encode then decode is the identity for every message, edition and terminal id, both through
whole frames (encode_frames + decode_frame) and through a pair of linked Jt808Connection objects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.jt808.codec import decode_body, decode_frame, encode_frames
from ingest.jt808.connection import Jt808Connection
from ingest.jt808.events import MessageReceived, PacketReceived
from ingest.jt808.ids import Edition, ErrorCode, Role
from ingest.jt808.messages import Message, PlatformGeneralResponse, RawMessage
from tests.support.jt808_strategies import (
    FRAME_EDITIONS,
    large_messages,
    message_strategies,
    terminals,
    u16,
)

ROUND_TRIP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LARGE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# (edition, kind) pairs: 2011 register widths exist only in 2013-style frames.
CASES = [
    pytest.param(edition, kind, id=f"{edition.value}-{kind}")
    for edition in FRAME_EDITIONS
    for kind in message_strategies(edition)
]


def _expected_error(message: Message) -> ErrorCode | None:
    return ErrorCode.UNKNOWN_MESSAGE if isinstance(message, RawMessage) else None


@pytest.mark.parametrize(("edition", "kind"), CASES)
def test_each_message_kind_decodes_to_itself_from_its_frame(edition: Edition, kind: str) -> None:
    strategy = message_strategies(edition)[kind]

    @ROUND_TRIP
    @given(message=strategy, terminal=terminals(edition), serial=u16, version=st.integers(0, 255))
    def check(message: Message, terminal: str, serial: int, version: int) -> None:
        frames = encode_frames(
            message, terminal=terminal, serial=serial, edition=edition, protocol_version=version
        )
        assert len(frames) == 1
        frame = decode_frame(frames[0])
        assert frame.header.msg_id == message.MSG_ID
        assert frame.header.terminal == terminal
        assert frame.header.serial == serial
        assert frame.header.edition is edition
        assert frame.header.packet_count is None
        if edition is Edition.V2019:
            assert frame.header.protocol_version == version
        assert type(frame.body) is type(message)
        assert frame.body == message
        assert frame.error == _expected_error(message)

    check()


@pytest.mark.parametrize("edition", FRAME_EDITIONS, ids=lambda e: str(e.value))
@LARGE
@given(data=st.data())
def test_a_body_over_1023_bytes_travels_in_packets_that_rejoin_to_the_message(
    edition: Edition, data: st.DataObject
) -> None:
    message = data.draw(large_messages(edition))
    terminal = data.draw(terminals(edition))
    serial = data.draw(u16)
    frames = encode_frames(message, terminal=terminal, serial=serial, edition=edition)
    assert len(frames) > 1
    decoded = [decode_frame(f) for f in frames]
    for index, frame in enumerate(decoded, start=1):
        assert frame.header.packet_count == len(frames)
        assert frame.header.packet_index == index
        assert frame.header.serial == (serial + index - 1) & 0xFFFF
        assert frame.header.terminal == terminal
        assert frame.header.body_length <= 1023
        assert isinstance(frame.body, RawMessage)
    body = b"".join(f.body.encode_body() for f in decoded)
    joined, error = decode_body(decoded[0].header, body)
    assert error is None
    assert type(joined) is type(message)
    assert joined == message


def _link(edition: Edition, terminal: str) -> tuple[Jt808Connection, Jt808Connection]:
    device = Jt808Connection(Role.TERMINAL, terminal=terminal, edition=edition)
    platform = Jt808Connection(Role.PLATFORM)
    return device, platform


def _drain(conn: Jt808Connection) -> list[Any]:
    return conn.events()


def _exchange(
    edition: Edition, terminal: str, uplink: Message, downlink: Message
) -> tuple[list[Any], list[Any], Jt808Connection]:
    """TERMINAL sends `uplink`, PLATFORM receives it and answers, then sends `downlink`."""
    device, platform = _link(edition, terminal)
    serial = device.send(uplink, now_s=0.0)
    platform.receive_data(device.data_to_send(), now_s=0.0)
    up_events = _drain(platform)
    received = [e for e in up_events if isinstance(e, MessageReceived)]
    assert len(received) == 1
    platform.answer(received[0].header)
    platform.send(downlink)
    device.receive_data(platform.data_to_send(), now_s=1.0)
    down_events = _drain(device)
    assert received[0].header.serial == serial
    return up_events, down_events, device


@pytest.mark.parametrize(("edition", "kind"), CASES)
def test_each_message_kind_crosses_a_connection_pair_and_is_answered(
    edition: Edition, kind: str
) -> None:
    strategy = message_strategies(edition)[kind]

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(uplink=strategy, downlink=strategy, terminal=terminals(edition))
    def check(uplink: Message, downlink: Message, terminal: str) -> None:
        up_events, down_events, device = _exchange(edition, terminal, uplink, downlink)
        (up,) = up_events
        assert isinstance(up, MessageReceived)
        assert type(up.message) is type(uplink)
        assert up.message == uplink
        assert up.error == _expected_error(uplink)
        assert up.header.terminal == terminal
        assert up.header.edition is edition
        answer, down = down_events
        assert isinstance(answer, MessageReceived)
        assert answer.header.edition is edition
        assert answer.header.terminal == terminal
        assert answer.message == PlatformGeneralResponse(up.header.serial, uplink.MSG_ID, 0)
        assert isinstance(down, MessageReceived)
        assert type(down.message) is type(downlink)
        assert down.message == downlink
        assert device.awaiting_reply == 0

    check()


@pytest.mark.parametrize("edition", FRAME_EDITIONS, ids=lambda e: str(e.value))
@LARGE
@given(data=st.data())
def test_a_sub_packaged_message_is_reassembled_by_the_receiving_connection(
    edition: Edition, data: st.DataObject
) -> None:
    uplink = data.draw(large_messages(edition))
    downlink = data.draw(large_messages(edition))
    terminal = data.draw(terminals(edition))
    up_events, down_events, device = _exchange(edition, terminal, uplink, downlink)
    packets = [e for e in up_events if isinstance(e, PacketReceived)]
    assert len(packets) == len(encode_frames(uplink, terminal=terminal, serial=0, edition=edition))
    assert [p.header.packet_index for p in packets] == list(range(1, len(packets) + 1))
    assert isinstance(up_events[-1], MessageReceived)
    assert up_events[-1].message == uplink
    assert up_events[-1].header.packet_count is None
    assert up_events[-1].header.serial == 0
    received = [e for e in down_events if isinstance(e, MessageReceived)]
    assert [e.message for e in received][1:] == [downlink]
    assert device.awaiting_reply == 0
