"""Message bodies: layouts per edition, padding, and bad bodies naming what failed."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.ids import Edition, ErrorCode, ParamId
from ingest.jt808.location import LocationReport
from ingest.jt808.messages import (
    DECODERS,
    Authenticate,
    BatchLocationReport,
    Heartbeat,
    LocationQueryReply,
    MultimediaEvent,
    ParametersReply,
    PassThrough,
    PlatformGeneralResponse,
    RawMessage,
    Register,
    RegisterResponse,
    ResendRequest,
    SetParameters,
    TemporaryTracking,
    TerminalControl,
    TerminalGeneralResponse,
    TextMessage,
)
from tests.support.jt808_strategies import DECODED_IDS

V13, V19, V11 = Edition.V2013, Edition.V2019, Edition.V2011
BLOCK = bytes.fromhex(
    "000001000000000301dc9a07073e2199000c025d005a240101120000"
)  # see test_location


def _bad_body(decode: object, body: bytes, edition: Edition = V13) -> FrameError:
    with pytest.raises(FrameError) as info:
        decode(body, edition)  # type: ignore[operator]
    assert info.value.code is ErrorCode.BAD_BODY
    return info.value


def test_every_decoded_message_id_has_a_strategy_in_the_test_support() -> None:
    assert set(DECODERS) == DECODED_IDS


# ---------------------------------------------------------------- general answers


@pytest.mark.parametrize("cls", [TerminalGeneralResponse, PlatformGeneralResponse])
def test_a_general_response_is_serial_id_and_result(cls: Any) -> None:
    message = cls.decode(bytes.fromhex("007b01c803"), V13)
    assert (message.answer_serial, message.answer_id, message.result) == (123, 456, 3)
    assert message.encode_body() == bytes.fromhex("007b01c803")


@pytest.mark.parametrize("cls", [TerminalGeneralResponse, PlatformGeneralResponse])
@pytest.mark.parametrize("body", ["007b01c8", "007b01c80300"])
def test_a_general_response_of_the_wrong_size_is_bad_body(cls: Any, body: str) -> None:
    assert "general response" in _bad_body(cls.decode, bytes.fromhex(body)).detail


def test_a_general_response_with_a_serial_out_of_range_cannot_be_encoded() -> None:
    with pytest.raises(Jt808UsageError):
        PlatformGeneralResponse(65536, 0x0200, 0).encode_body()


def test_heartbeat_keeps_the_bytes_some_devices_append() -> None:
    assert Heartbeat.decode(b"\x64\x1f", V13) == Heartbeat(b"\x64\x1f")


# ---------------------------------------------------------------- register


def _register_body(maker: bytes, model: bytes, terminal_id: bytes, plate: bytes) -> bytes:
    return b"\x00\x2c\x01\x2c" + maker + model + terminal_id + b"\x01" + plate


def test_a_2013_register_uses_widths_5_20_7() -> None:
    body = _register_body(
        b"MK001", b"TK-100".ljust(20, b"\x00"), b"ID00007", "粤B12345".encode("gbk")
    )
    message = Register.decode(body, V13)
    assert message == Register(44, 300, "MK001", "TK-100", "ID00007", 1, "粤B12345", V13)
    assert message.encode_body() == body


def test_a_register_shorter_than_37_bytes_uses_the_2011_widths_5_8_7() -> None:
    body = _register_body(b"MK001", b"TK-2011\x00", b"ID00007", "京A1234".encode("gbk"))
    assert len(body) < 37
    message = Register.decode(body, V13)
    assert message == Register(44, 300, "MK001", "TK-2011", "ID00007", 1, "京A1234", V11)
    assert message.encode_body() == body


def test_a_2019_register_uses_widths_11_30_30() -> None:
    body = _register_body(
        b"MAKER".ljust(11, b"\x00"),
        b"MODEL-2019".ljust(30, b"\x00"),
        b"TERMINAL-ID-0001".ljust(30, b"\x00"),
        b"LSVAB1234567890XY",
    )
    message = Register.decode(body, V19)
    assert message == Register(
        44, 300, "MAKER", "MODEL-2019", "TERMINAL-ID-0001", 1, "LSVAB1234567890XY", V19
    )
    assert message.encode_body() == body


def test_padding_with_nul_or_spaces_is_not_part_of_a_text_field() -> None:
    body = _register_body(
        b"AB \x00 ", b"TK100".ljust(20, b" "), b"T7\x00\x00\x00\x00\x00", b"B1\x00"
    )
    message = Register.decode(body, V13)
    assert (message.maker_id, message.model, message.terminal_id, message.plate) == (
        "AB",
        "TK100",
        "T7",
        "B1",
    )


def test_inner_spaces_of_a_text_field_are_kept() -> None:
    body = _register_body(b"A B\x00\x00", b"TK 100".ljust(20, b"\x00"), b"ID 7\x00\x00\x00", b"B 1")
    message = Register.decode(body, V13)
    assert (message.maker_id, message.model, message.terminal_id, message.plate) == (
        "A B",
        "TK 100",
        "ID 7",
        "B 1",
    )


@pytest.mark.parametrize(("edition", "size"), [(V13, 24), (V19, 75)])
def test_a_register_shorter_than_its_fixed_part_is_bad_body(edition: Edition, size: int) -> None:
    assert "register" in _bad_body(Register.decode, bytes(size), edition).detail


def test_a_register_field_too_long_for_its_width_cannot_be_encoded() -> None:
    with pytest.raises(Jt808UsageError, match="model"):
        Register(0, 0, "M", "X" * 21, "ID", 1, "B1", V13).encode_body()
    with pytest.raises(Jt808UsageError, match="model"):
        Register(0, 0, "M", "X" * 9, "ID", 1, "B1", V11).encode_body()


def test_text_outside_gbk_cannot_be_encoded() -> None:
    with pytest.raises(Jt808UsageError, match="GBK"):
        TextMessage(0, "\U0001f600").encode_body()


def test_undecodable_text_bytes_become_replacement_characters() -> None:
    assert TextMessage.decode(b"\x08\xff\xfe\x81", V13).text.count("\ufffd") >= 1


# ---------------------------------------------------------------- register response, auth


def test_a_register_response_carries_the_auth_code_only_when_accepted() -> None:
    ok = RegisterResponse.decode(b"\x00\x05\x00code\x00\x00", V13)
    assert ok == RegisterResponse(5, 0, "code")
    refused = RegisterResponse.decode(b"\x00\x05\x04", V13)
    assert refused == RegisterResponse(5, 4, "")
    assert RegisterResponse(5, 4, "ignored").encode_body() == b"\x00\x05\x04"
    _bad_body(RegisterResponse.decode, b"\x00\x05")


def test_a_2013_authentication_is_the_whole_body() -> None:
    message = Authenticate.decode(b"auth-code\x00", V13)
    assert message == Authenticate("auth-code")
    assert Authenticate("auth-code").encode_body() == b"auth-code"


def test_a_2019_authentication_has_length_code_imei_and_version() -> None:
    body = b"\x09auth-code" + b"860123456789012" + b"1.2.3".ljust(20, b"\x00")
    message = Authenticate.decode(body, V19)
    assert message == Authenticate("auth-code", "860123456789012", "1.2.3", V19)
    assert message.encode_body() == body


def test_a_2019_authentication_cut_short_is_bad_body() -> None:
    body = b"\x09auth-code" + b"860123456789012" + b"1.2.3"
    _bad_body(Authenticate.decode, body, V19)
    _bad_body(Authenticate.decode, b"", V19)


# ---------------------------------------------------------------- parameters


def test_set_parameters_builds_dwords_and_text_from_readable_values() -> None:
    message = SetParameters.of({ParamId.DEFAULT_INTERVAL_S: 30, ParamId.SERVER_ADDRESS: "h:1"})
    body = message.encode_body()
    assert body == bytes.fromhex("0200000029040000001e0000001303") + b"h:1"
    assert SetParameters.decode(body, V13) == message
    assert message.values() == {0x0029: 30, 0x0013: "h:1"}


def test_set_parameters_refuses_a_number_for_a_text_parameter() -> None:
    with pytest.raises(Jt808UsageError):
        SetParameters.of({ParamId.SERVER_ADDRESS: 5})


@pytest.mark.parametrize(
    "body",
    [
        "",  # no count
        "01" "00000029" "04" "0000",  # value cut
        "02" "00000029" "04" "0000001e",  # second parameter missing
        "01" "000000",  # id cut
        "01" "00000029" "01" "1e" "ff",  # a byte after the parameters
    ],
)  # fmt: skip
def test_a_parameter_list_that_does_not_add_up_is_bad_body(body: str) -> None:
    _bad_body(SetParameters.decode, bytes.fromhex(body))


def test_more_than_255_parameters_cannot_be_encoded() -> None:
    with pytest.raises(Jt808UsageError):
        SetParameters(tuple((i, b"") for i in range(256))).encode_body()


def test_a_parameters_reply_has_the_answer_serial_then_the_list() -> None:
    body = bytes.fromhex("00070100000001040000003c")
    message = ParametersReply.decode(body, V13)
    assert message == ParametersReply(7, ((1, b"\x00\x00\x00\x3c"),))
    assert message.values() == {1: 60}
    assert message.encode_body() == body
    _bad_body(ParametersReply.decode, b"\x00\x07")


# ---------------------------------------------------------------- locations


def test_a_location_query_reply_is_a_serial_then_a_location_body() -> None:
    message = LocationQueryReply.decode(b"\x00\x09" + BLOCK, V13)
    assert message.answer_serial == 9
    assert message.location == LocationReport.decode_from(BLOCK)
    assert message.encode_body() == b"\x00\x09" + BLOCK
    _bad_body(LocationQueryReply.decode, b"\x00\x09" + BLOCK[:20])


def _batch(kind: int, count: int, items: list[bytes]) -> bytes:
    body = count.to_bytes(2, "big") + bytes((kind,))
    return body + b"".join(len(i).to_bytes(2, "big") + i for i in items)


def test_a_batch_holds_length_prefixed_location_bodies() -> None:
    second = BLOCK + bytes.fromhex("300119")
    message = BatchLocationReport.decode(_batch(1, 2, [BLOCK, second]), V13)
    assert message.kind == 1
    assert message.backfill is True
    assert message.items == (LocationReport.decode_from(BLOCK), LocationReport.decode_from(second))
    assert message.encode_body() == _batch(1, 2, [BLOCK, second])
    assert BatchLocationReport.decode(_batch(0, 0, []), V13).backfill is False


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_batch(0, 3, [BLOCK, BLOCK]), "declares 3 items"),
        (_batch(0, 1, [BLOCK])[:-1], "declares 28 bytes"),
        (_batch(0, 1, [BLOCK]) + b"\x00", "no length"),
        (_batch(0, 1, [BLOCK[:20]]), "batch item 1"),
        (b"\x00\x01", "batch"),
    ],
)
def test_a_batch_that_does_not_add_up_is_bad_body(body: bytes, words: str) -> None:
    assert words in _bad_body(BatchLocationReport.decode, body).detail


def test_temporary_tracking_with_interval_zero_stops_and_has_no_validity() -> None:
    assert TemporaryTracking.decode(b"\x00\x00", V13) == TemporaryTracking(0, 0)
    assert TemporaryTracking(0).encode_body() == b"\x00\x00"
    body = bytes.fromhex("000500000258")
    assert TemporaryTracking.decode(body, V13) == TemporaryTracking(5, 600)
    _bad_body(TemporaryTracking.decode, b"\x00\x05\x00")
    _bad_body(TemporaryTracking.decode, b"\x00")


# ---------------------------------------------------------------- control, text, data


@pytest.mark.parametrize("cls", [TerminalControl, TextMessage, PassThrough])
def test_a_one_byte_kind_then_payload_body_needs_its_first_byte(cls: Any) -> None:
    _bad_body(cls.decode, b"")


def test_terminal_control_and_text_carry_gbk_text_after_their_first_byte() -> None:
    assert TerminalControl.decode(b"\x01url;apn", V13) == TerminalControl(1, "url;apn")
    assert TextMessage.decode(b"\x08" + "断油".encode("gbk"), V13) == TextMessage(8, "断油")
    assert TextMessage(8, "断油").encode_body() == b"\x08" + "断油".encode("gbk")


def test_pass_through_keeps_its_payload_raw() -> None:
    assert PassThrough.decode(b"\x41\x00\x7e", V13) == PassThrough(0x41, b"\x00\x7e")


@pytest.mark.parametrize(
    ("edition", "body"),
    [(V13, "0010" "02" "0003" "0005"), (V19, "0010" "0002" "0003" "0005")],
)  # fmt: skip
def test_a_resend_request_counts_packets_in_a_byte_or_in_2019_a_word(
    edition: Edition, body: str
) -> None:
    message = ResendRequest.decode(bytes.fromhex(body), edition)
    assert message == ResendRequest(16, (3, 5), V19 if edition is V19 else V13)
    assert message.encode_body() == bytes.fromhex(body)


@pytest.mark.parametrize(
    ("edition", "body"), [(V13, "0010" "02" "0003"), (V19, "0010" "02" "0003" "0005"), (V13, "00")]
)  # fmt: skip
def test_a_resend_request_whose_count_and_size_disagree_is_bad_body(
    edition: Edition, body: str
) -> None:
    _bad_body(ResendRequest.decode, bytes.fromhex(body), edition)


def test_a_2013_resend_request_cannot_ask_for_more_than_255_packets() -> None:
    with pytest.raises(Jt808UsageError):
        ResendRequest(1, tuple(range(256)), V13).encode_body()
    assert len(ResendRequest(1, tuple(range(256)), V19).encode_body()) == 4 + 512


def test_a_multimedia_event_is_exactly_eight_bytes() -> None:
    body = bytes.fromhex("0000007b00000701")
    assert MultimediaEvent.decode(body, V13) == MultimediaEvent(123, 0, 0, 7, 1)
    _bad_body(MultimediaEvent.decode, body[:-1])


def test_a_raw_message_reports_its_own_id() -> None:
    raw = RawMessage(0x0F01, b"\x01")
    assert raw.MSG_ID == 0x0F01
    assert raw.encode_body() == b"\x01"
