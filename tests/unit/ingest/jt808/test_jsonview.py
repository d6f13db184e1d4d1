"""The contract's JSON view of frames (contracts section 2)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from ingest.jt808.codec import encode_frame, encode_frames
from ingest.jt808.ids import Edition
from ingest.jt808.jsonview import body_json, decode_hex_line, location_json
from ingest.jt808.location import LocationReport
from ingest.jt808.messages import (
    Authenticate,
    BatchLocationReport,
    LocationQueryReply,
    PassThrough,
    Register,
    ResendRequest,
    SetParameters,
)
from tests.support.jt808_strategies import header_2013, header_2019, seal_by_hand

T13 = "013912345678"
T19 = "00000000013912345678"
FIELDS: dict[str, Any] = {
    "alarm": 256,
    "status": 3,
    "lat_e6": 31_234_567,
    "lon_e6": 121_512_345,
    "altitude_m": 12,
    "speed_dkmh": 605,
    "course": 90,
    "time_bcd": bytes.fromhex("240101120000"),
    "extras": ((0x01, b"\x00\x00\x30\x39"), (0x30, b"\x19"), (0x31, b"\x09")),
}


def _report(**change: Any) -> LocationReport:
    return LocationReport(**{**FIELDS, **change})


REPORT = _report()
CONTRACT_CODES = {"bad_checksum", "bad_escape", "truncated", "bad_length", "unknown_message",
                  "bad_body"}  # fmt: skip
CONTRACT_EXAMPLE = {
    "msg_id": "0x0200",
    "terminal": "013912345678",
    "serial": 52,
    "edition": 2013,
    "body": {
        "lat": 31.234567,
        "lon": 121.512345,
        "altitude_m": 12,
        "speed_kmh": 60.5,
        "course": 90,
        "time": "2024-01-01T12:00:00+08:00",
        "alarm": 256,
        "status": 3,
        "extras": {"0x01": 1234.5, "0x30": 25, "0x31": 9},
    },
}


def test_the_contract_example_decodes_to_exactly_the_contract_object() -> None:
    line = encode_frame(REPORT, terminal=T13, serial=52).hex()
    assert decode_hex_line(line) == CONTRACT_EXAMPLE


def test_hex_lines_may_hold_spaces_and_upper_case() -> None:
    line = encode_frame(REPORT, terminal=T13, serial=52).hex().upper()
    spaced = " ".join(line[i : i + 2] for i in range(0, len(line), 2))
    assert decode_hex_line("  " + spaced + "\t\n") == CONTRACT_EXAMPLE


@pytest.mark.parametrize("line", ["7e0g7e", "7e000", "zz"])
def test_a_line_that_is_not_hex_gives_an_error_object(line: str) -> None:
    out = decode_hex_line(line)
    assert out["error"] in CONTRACT_CODES
    assert out["detail"]
    assert out["hex"] == line


def test_a_2019_header_shows_its_protocol_version_and_20_digits() -> None:
    out = decode_hex_line(seal_by_hand(header_2019(0x0002, 0, T19, 1, version=2)).hex())
    assert out["terminal"] == T19
    assert out["edition"] == 2019
    assert out["protocol_version"] == 2
    assert re.fullmatch(r"0x[0-9a-f]{4}", out["msg_id"])


def test_a_packet_shows_its_count_and_index_and_a_raw_body() -> None:
    frames = encode_frames(PassThrough(0x41, bytes(1500)), terminal=T13, serial=0)
    out = decode_hex_line(frames[1].hex())
    assert out["packet"] == {"count": 2, "index": 2}
    assert out["body"] == {"raw": "00" * 501}
    assert "error" not in out


def test_an_unknown_message_is_an_error_object_with_its_header_and_raw_body() -> None:
    frame = seal_by_hand(header_2013(0x0F01, 2, T13, 11) + b"\x01\xab")
    out = decode_hex_line(frame.hex())
    assert out["error"] == "unknown_message"
    assert "0x0f01" in out["detail"]
    assert out["hex"] == frame.hex()
    assert (out["msg_id"], out["terminal"], out["serial"]) == ("0x0f01", T13, 11)
    assert out["body"] == {"raw": "01ab"}


def test_an_invalid_device_time_is_null_with_the_raw_digits_beside_it() -> None:
    out = location_json(_report(time_bcd=bytes.fromhex("241332000000")))
    assert out["time"] is None
    assert out["time_raw"] == "241332000000"


def test_south_west_and_vendor_tails_show_in_the_location_view() -> None:
    tail = bytes.fromhex("64000f42400c80000000011f000000000000")
    out = location_json(_report(status=0b1111, extras=(), raw_tail=tail))
    assert out["lat"] == pytest.approx(-31.234567, abs=1e-9)
    assert out["lon"] == pytest.approx(-121.512345, abs=1e-9)
    assert out["raw"] == tail.hex()
    assert "extras" not in out


def test_bodies_are_snake_case_with_hex_bytes_lists_and_edition_years() -> None:
    auth = body_json(Authenticate("code", "860123456789012", "1.0", Edition.V2019))
    assert auth == {
        "auth_code": "code",
        "imei": "860123456789012",
        "software_version": "1.0",
        "edition": 2019,
    }
    register = body_json(Register(44, 300, "MK", "TK", "ID", 1, "粤B1", Edition.V2011))
    assert register["edition"] == 2011
    assert register["plate"] == "粤B1"
    assert body_json(ResendRequest(3, (1, 2))) == {
        "original_serial": 3,
        "packet_indexes": [1, 2],
        "edition": 2013,
    }
    assert body_json(PassThrough(0x41, b"\x7e\x00")) == {"kind": 0x41, "payload": "7e00"}


def test_nested_locations_and_batches_use_the_location_view() -> None:
    reply = body_json(LocationQueryReply(9, REPORT))
    assert reply == {"answer_serial": 9, "location": CONTRACT_EXAMPLE["body"]}
    batch = body_json(BatchLocationReport(1, (REPORT, REPORT)))
    assert batch["backfill"] is True
    assert batch["items"] == [CONTRACT_EXAMPLE["body"]] * 2


def test_parameters_show_numbers_for_dword_ids_and_text_otherwise() -> None:
    params = SetParameters(((0x0029, b"\x00\x00\x00\x1e"), (0x0013, b"10.0.0.1:6808\x00")))
    assert body_json(params) == {"params": {"0x0029": 30, "0x0013": "10.0.0.1:6808"}}


def test_every_view_is_json_serializable() -> None:
    for message in (REPORT, LocationQueryReply(9, REPORT), PassThrough(1, b"\xff")):
        json.dumps(body_json(message), ensure_ascii=False)
