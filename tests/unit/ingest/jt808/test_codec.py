"""Whole frames: decode_frame and the encoders, including sub-packaging."""

from __future__ import annotations

import pytest

from ingest.jt808.codec import (
    PACKET_BODY,
    decode_body,
    decode_frame,
    encode_frame,
    encode_frames,
    encode_packet,
)
from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.header import Header
from ingest.jt808.ids import Edition, ErrorCode
from ingest.jt808.messages import (
    Heartbeat,
    PassThrough,
    RawMessage,
    Register,
    ResendRequest,
    TextMessage,
)
from tests.support.jt808_strategies import header_2013, seal_by_hand

T13 = "013912345678"
T19 = "00000000013912345678"


def test_a_heartbeat_frame_is_exactly_the_hand_made_bytes() -> None:
    frame = encode_frame(Heartbeat(), terminal=T13, serial=1)
    assert frame == seal_by_hand(header_2013(0x0002, 0, T13, 1))
    decoded = decode_frame(frame)
    assert decoded.header.msg_id == 0x0002
    assert decoded.body == Heartbeat()
    assert decoded.error is None


def test_an_unknown_message_id_keeps_its_header_and_raw_body() -> None:
    frame = seal_by_hand(header_2013(0x0F01, 3, T13, 11) + b"\x01\x7e\x03")
    decoded = decode_frame(frame)
    assert decoded.error is ErrorCode.UNKNOWN_MESSAGE
    assert decoded.header.terminal == T13
    assert decoded.header.serial == 11
    assert decoded.body == RawMessage(0x0F01, b"\x01\x7e\x03")


def test_a_single_packet_of_several_is_returned_raw_without_error() -> None:
    frame = seal_by_hand(
        header_2013(0x0900, 3, T13, 5, props=1 << 13) + bytes.fromhex("00030002") + b"abc"
    )
    decoded = decode_frame(frame)
    assert decoded.error is None
    assert (decoded.header.packet_count, decoded.header.packet_index) == (3, 2)
    assert decoded.body == RawMessage(0x0900, b"abc")


def test_an_encrypted_body_is_returned_raw_without_error() -> None:
    frame = seal_by_hand(header_2013(0x0200, 3, T13, 5, props=1 << 10) + b"xyz")
    decoded = decode_frame(frame)
    assert decoded.error is None
    assert decoded.header.encryption == 1
    assert decoded.body == RawMessage(0x0200, b"xyz")


def test_a_bad_body_raises_bad_body_from_decode_frame() -> None:
    frame = seal_by_hand(header_2013(0x8001, 2, T13, 5) + b"\x00\x01")
    with pytest.raises(FrameError) as info:
        decode_frame(frame)
    assert info.value.code is ErrorCode.BAD_BODY


def test_decode_body_reports_unknown_ids() -> None:
    header = Header(msg_id=0x0F02, edition=Edition.V2013, terminal=T13, serial=1, body_length=2)
    message, error = decode_body(header, b"zz")
    assert message == RawMessage(0x0F02, b"zz")
    assert error is ErrorCode.UNKNOWN_MESSAGE


def test_a_2019_frame_carries_the_protocol_version_and_a_20_digit_terminal() -> None:
    frame = encode_frame(Heartbeat(), terminal=T19, serial=7, edition=Edition.V2019,
                         protocol_version=2)  # fmt: skip
    decoded = decode_frame(frame)
    assert decoded.header.edition is Edition.V2019
    assert decoded.header.protocol_version == 2
    assert decoded.header.terminal == T19


def test_a_frame_can_be_sent_to_a_binary_terminal_id() -> None:
    raw = bytes.fromhex("20769c7b6d5c")
    decoded = decode_frame(encode_frame(Heartbeat(), terminal=raw, serial=1))
    assert decoded.header.terminal_raw == raw
    assert decoded.header.terminal == "356938035643809"


def test_a_body_of_exactly_1023_bytes_fits_one_frame() -> None:
    message = PassThrough(0x41, bytes(1022))
    (frame,) = encode_frames(message, terminal=T13, serial=1)
    assert decode_frame(frame).body == message


def test_a_body_over_1023_bytes_is_cut_into_packets_of_consecutive_serials() -> None:
    body = bytes(range(256)) * 9  # 2304 bytes with the kind byte: 1000 + 1000 + 305
    frames = encode_frames(PassThrough(0x41, body), terminal=T13, serial=65534)
    decoded = [decode_frame(f) for f in frames]
    assert [d.header.serial for d in decoded] == [65534, 65535, 0]
    assert [(d.header.packet_count, d.header.packet_index) for d in decoded] == [
        (3, 1),
        (3, 2),
        (3, 3),
    ]
    sizes = [len(d.body.encode_body()) for d in decoded]
    assert sizes == [PACKET_BODY, PACKET_BODY, 2305 - 2 * PACKET_BODY]
    assert b"".join(d.body.encode_body() for d in decoded) == b"\x41" + body


def test_encode_frame_refuses_a_body_that_needs_packets() -> None:
    with pytest.raises(Jt808UsageError, match="encode_frames"):
        encode_frame(TextMessage(0, "x" * 1100), terminal=T13, serial=1)


def test_encode_packet_rebuilds_one_packet_as_first_sent() -> None:
    message = PassThrough(0x41, bytes(2500))
    frames = encode_frames(message, terminal=T13, serial=10)
    body = message.encode_body()
    again = encode_packet(
        0x0900,
        body[PACKET_BODY : 2 * PACKET_BODY],
        terminal=T13,
        serial=11,
        edition=Edition.V2013,
        count=3,
        index=2,
    )
    assert again == frames[1]


def test_edition_dependent_bodies_follow_the_frame_edition() -> None:
    register = Register(44, 300, "MAKER-2019", "MODEL", "ID", 1, "B1", Edition.V2013)
    decoded = decode_frame(encode_frame(register, terminal=T19, serial=1, edition=Edition.V2019))
    assert decoded.body == Register(44, 300, "MAKER-2019", "MODEL", "ID", 1, "B1", Edition.V2019)
    resend = ResendRequest(3, (1, 2), Edition.V2019)
    decoded = decode_frame(encode_frame(resend, terminal=T13, serial=1, edition=Edition.V2013))
    assert decoded.body == ResendRequest(3, (1, 2), Edition.V2013)


def test_a_2011_register_stays_2011_in_a_2013_frame() -> None:
    register = Register(44, 300, "MK", "TK", "ID", 1, "B1", Edition.V2011)
    decoded = decode_frame(encode_frame(register, terminal=T13, serial=1))
    assert decoded.body == register


def test_a_2019_register_that_does_not_fit_2013_widths_cannot_be_sent_in_2013() -> None:
    register = Register(44, 300, "MAKER-2019", "MODEL", "ID", 1, "B1", Edition.V2019)
    with pytest.raises(Jt808UsageError, match="maker"):
        encode_frame(register, terminal=T13, serial=1, edition=Edition.V2013)
