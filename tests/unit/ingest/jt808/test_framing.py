"""Flags, escapes, the XOR check code and the stream splitter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.jt808.errors import FrameError
from ingest.jt808.framing import (
    FrameSplitter,
    checksum,
    escape,
    open_frame,
    seal,
    unescape,
)
from ingest.jt808.ids import ErrorCode
from tests.support.jt808_strategies import escape_by_hand, header_2013, seal_by_hand, xor_of

HEARTBEAT = header_2013(0x0002, 0, "013912345678", 1)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2100))
def test_the_check_code_is_the_xor_of_every_byte(data: bytes) -> None:
    assert checksum(data) == xor_of(data)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 1023, 1045])
def test_the_check_code_sees_the_last_byte_of_any_length(size: int) -> None:
    data = bytes(size - 1) + b"\x5a" if size else b""
    assert checksum(data) == (0x5A if size else 0)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_escaping_matches_the_rule_and_unescaping_inverts_it(data: bytes) -> None:
    escaped = escape(data)
    assert escaped == escape_by_hand(data)
    assert b"\x7e" not in escaped
    assert unescape(escaped) == data


def test_escape_maps_each_special_byte_to_its_pair() -> None:
    assert escape(b"\x30\x7e\x08\x7d\x55") == bytes.fromhex("307d02087d0155")
    assert escape(b"\x7d\x02") == bytes.fromhex("7d0102")
    assert escape(b"\x7d\x7e") == bytes.fromhex("7d017d02")


@pytest.mark.parametrize("bad", ["7d", "017d", "7d03", "7d00", "7d7d", "7d017d"])
def test_an_escape_byte_not_followed_by_1_or_2_is_a_bad_escape(bad: str) -> None:
    with pytest.raises(FrameError) as info:
        unescape(bytes.fromhex(bad))
    assert info.value.code is ErrorCode.BAD_ESCAPE


def test_seal_and_open_frame_wrap_and_unwrap_header_and_body() -> None:
    content = HEARTBEAT + b"\x7e\x7d"
    frame = seal(content)
    assert frame == seal_by_hand(content)
    assert open_frame(frame) == content
    assert open_frame(frame[1:-1]) == content


def test_a_check_code_that_needs_escaping_travels_escaped() -> None:
    content = HEARTBEAT[:-1] + bytes((HEARTBEAT[-1] ^ xor_of(HEARTBEAT) ^ 0x7D,))
    assert xor_of(content) == 0x7D
    frame = seal(content)
    assert frame.endswith(b"\x7d\x01\x7e")
    assert open_frame(frame) == content


def test_a_changed_check_code_is_a_bad_checksum() -> None:
    frame = bytearray(seal(HEARTBEAT))
    frame[-2] ^= 0x01
    with pytest.raises(FrameError) as info:
        open_frame(bytes(frame))
    assert info.value.code is ErrorCode.BAD_CHECKSUM
    assert "check code" in info.value.detail


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("7e", ErrorCode.TRUNCATED),
        ("7e7e", ErrorCode.TRUNCATED),
        ("7e0002000001", ErrorCode.TRUNCATED),
        ("7e000200000139123456780001337e", None),
        ("7e00020000013912345678337e", ErrorCode.TRUNCATED),
        ("7e0002000001397e123456780001337e", ErrorCode.BAD_ESCAPE),
    ],
)
def test_open_frame_names_what_is_wrong(frame: str, code: ErrorCode | None) -> None:
    data = bytes.fromhex(frame)
    if code is None:
        assert open_frame(data) == bytes.fromhex(frame)[1:-2]
        return
    with pytest.raises(FrameError) as info:
        open_frame(data)
    assert info.value.code is code


def _fault(splitter: FrameSplitter) -> object:
    return splitter.error


def test_the_splitter_drops_bytes_before_the_first_flag() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"garbage\x7eabc\x7e") == [b"abc"]
    assert splitter.discarded_bytes == len(b"garbage")


def test_the_splitter_keeps_a_partial_frame_across_reads() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"\x7eab") == []
    assert splitter.pending_bytes == 2
    assert splitter.feed(b"c") == []
    assert splitter.feed(b"d\x7e\x7eef\x7e\x7e") == [b"abcd", b"ef"]
    assert splitter.pending_bytes == 0


def test_back_to_back_flags_delimit_nothing() -> None:
    splitter = FrameSplitter()
    assert splitter.feed(b"\x7e\x7e\x7e\x7eab\x7e\x7e\x7e") == [b"ab"]


def test_an_oversized_frame_is_a_stream_fault_after_the_frames_before_it() -> None:
    splitter = FrameSplitter(max_frame_bytes=10)
    assert splitter.feed(b"\x7eabc\x7e\x7e" + b"x" * 11 + b"\x7e\x7edef\x7e") == [b"abc"]
    assert splitter.error is not None
    assert splitter.feed(b"\x7eghi\x7e") == []


def test_an_oversized_frame_still_open_is_a_stream_fault() -> None:
    splitter = FrameSplitter(max_frame_bytes=10)
    assert splitter.feed(b"\x7e" + b"x" * 6) == []
    assert _fault(splitter) is None
    assert splitter.feed(b"x" * 5) == []
    assert "10 bytes" in str(_fault(splitter))


def test_a_frame_of_exactly_the_limit_passes() -> None:
    splitter = FrameSplitter(max_frame_bytes=10)
    assert splitter.feed(b"\x7e" + b"x" * 10 + b"\x7e") == [b"x" * 10]
    assert splitter.error is None


def test_garbage_before_the_first_flag_is_never_a_fault() -> None:
    splitter = FrameSplitter(max_frame_bytes=10)
    assert splitter.feed(b"y" * 100) == []
    assert splitter.feed(b"y" * 100 + b"\x7eab\x7e") == [b"ab"]
    assert splitter.error is None
    assert splitter.discarded_bytes == 200
