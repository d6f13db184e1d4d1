"""Headers of each edition, the layout fallback for mixed-up terminals, and terminal ids."""

from __future__ import annotations

import pytest

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.fields import binary_imei, luhn_digit, terminal_from_bytes, terminal_to_bytes
from ingest.jt808.header import build_header, parse_header
from ingest.jt808.ids import Edition, ErrorCode
from tests.support.jt808_strategies import header_2013, header_2019

T13 = "013912345678"
T19 = "00000000013912345678"


def test_a_2013_header_gives_id_terminal_serial_and_body() -> None:
    header, body = parse_header(header_2013(0x0200, 3, T13, 0x1234) + b"abc")
    assert (header.msg_id, header.terminal, header.serial) == (0x0200, T13, 0x1234)
    assert header.edition is Edition.V2013
    assert header.body_length == 3
    assert header.protocol_version == 0
    assert header.packet_count is None
    assert header.packet_index is None
    assert header.subpackaged is False
    assert header.terminal_raw == bytes.fromhex(T13)
    assert body == b"abc"


def test_a_2019_header_has_a_version_byte_and_a_20_digit_terminal() -> None:
    header, body = parse_header(header_2019(0x0002, 0, T19, 65535, version=3))
    assert header.edition is Edition.V2019
    assert header.terminal == T19
    assert header.serial == 65535
    assert header.protocol_version == 3
    assert body == b""


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
def test_packet_fields_follow_the_serial_when_bit_13_is_set(edition: Edition) -> None:
    if edition is Edition.V2019:
        head = header_2019(0x0801, 2, T19, 9, props=(1 << 14) | (1 << 13))
    else:
        head = header_2013(0x0801, 2, T13, 9, props=1 << 13)
    header, body = parse_header(head + bytes.fromhex("001a0002") + b"zz")
    assert header.edition is edition
    assert (header.packet_count, header.packet_index) == (26, 2)
    assert header.subpackaged is True
    assert body == b"zz"


def test_encryption_bits_are_reported() -> None:
    header, _ = parse_header(header_2013(0x0200, 0, T13, 1, props=1 << 10))
    assert header.encryption == 1


def test_a_2019_flag_on_a_2013_header_decodes_by_the_2013_layout() -> None:
    header, body = parse_header(header_2013(0x0200, 4, T13, 5, props=1 << 14) + b"body")
    assert header.edition is Edition.V2013
    assert header.terminal == T13
    assert header.serial == 5
    assert body == b"body"


def test_a_2019_header_without_the_flag_decodes_by_the_2019_layout() -> None:
    header, body = parse_header(header_2019(0x0200, 4, T19, 5, props=0, version=1) + b"body")
    assert header.edition is Edition.V2019
    assert header.terminal == T19
    assert header.protocol_version == 1
    assert body == b"body"


def test_a_body_length_that_fits_neither_layout_is_bad_length() -> None:
    with pytest.raises(FrameError) as info:
        parse_header(header_2013(0x0200, 10, T13, 1) + b"abc")
    assert info.value.code is ErrorCode.BAD_LENGTH
    assert "10-byte body" in info.value.detail


@pytest.mark.parametrize("size", [0, 5, 11])
def test_fewer_than_12_bytes_is_truncated(size: int) -> None:
    with pytest.raises(FrameError) as info:
        parse_header(header_2013(0x0002, 0, T13, 1)[:size])
    assert info.value.code is ErrorCode.TRUNCATED


def test_a_2019_header_cut_before_its_serial_is_truncated() -> None:
    with pytest.raises(FrameError) as info:
        parse_header(header_2019(0x0002, 10, T19, 1)[:14])
    assert info.value.code is ErrorCode.TRUNCATED


def test_missing_packet_fields_are_truncated() -> None:
    with pytest.raises(FrameError) as info:
        parse_header(header_2013(0x0801, 5, T13, 1, props=1 << 13) + b"\x00")
    assert info.value.code is ErrorCode.TRUNCATED


@pytest.mark.parametrize(
    ("terminal", "edition", "digits"),
    [
        ("013912345678", Edition.V2013, "013912345678"),
        ("000000000001", Edition.V2013, "000000000001"),
        ("13912345678", Edition.V2013, "013912345678"),
        ("013912345678", Edition.V2019, "00000000013912345678"),
        ("12345678901234567890", Edition.V2019, "12345678901234567890"),
    ],
)
def test_built_headers_keep_leading_zeros_of_the_terminal(
    terminal: str, edition: Edition, digits: str
) -> None:
    head = build_header(0x0002, 0, terminal=terminal, serial=1, edition=edition)
    header, _ = parse_header(head)
    assert header.terminal == digits
    assert header.edition is edition


def test_build_header_sets_bit_14_only_for_2019() -> None:
    head13 = build_header(0x0002, 0, terminal=T13, serial=1, edition=Edition.V2013)
    head19 = build_header(0x0002, 0, terminal=T19, serial=1, edition=Edition.V2019)
    assert head13[2] & 0x40 == 0
    assert head19[2] & 0x40 == 0x40
    assert len(head13) == 12
    assert len(head19) == 17


def test_build_header_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(Jt808UsageError):
        build_header(0x0002, 1024, terminal=T13, serial=1, edition=Edition.V2013)
    with pytest.raises(Jt808UsageError):
        build_header(0x0002, 0, terminal=T13, serial=65536, edition=Edition.V2013)
    with pytest.raises(Jt808UsageError):
        build_header(0x0002, 0, terminal="0139123456789", serial=1, edition=Edition.V2013)
    with pytest.raises(Jt808UsageError):
        build_header(0x0002, 0, terminal="01391234567x", serial=1, edition=Edition.V2013)


def test_a_raw_terminal_id_is_sent_as_is() -> None:
    raw = bytes.fromhex("20769c7b6d5c")
    assert terminal_to_bytes(raw, 6) == raw
    with pytest.raises(Jt808UsageError):
        terminal_to_bytes(raw, 10)


def test_a_binary_terminal_id_decodes_as_an_imei_with_its_luhn_digit() -> None:
    header, _ = parse_header(header_2013(0x0002, 0, "20769c7b6d5c", 1))
    assert header.terminal == "356938035643809"
    assert header.terminal_raw == bytes.fromhex("20769c7b6d5c")


@pytest.mark.parametrize("imei", ["490154203237518", "356938035643809"])
def test_a_published_imei_sent_as_binary_reads_back_whole(imei: str) -> None:
    raw = int(imei[:14]).to_bytes(6, "big")
    assert not raw.hex().isdigit()
    assert terminal_from_bytes(raw) == imei
    assert binary_imei(raw) == imei


def test_the_luhn_digit_of_published_examples() -> None:
    assert luhn_digit("49015420323751") == 8
    assert luhn_digit("35693803564380") == 9
    assert luhn_digit("7992739871") == 3
