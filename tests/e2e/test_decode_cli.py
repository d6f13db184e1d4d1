"""`lienwatch decode` as a user runs it: hex lines in (stdin or arguments), JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ingest.jt808.codec import encode_frame
from ingest.jt808.jsonview import decode_hex_line
from ingest.jt808.location import LocationReport
from tests.conftest import load_frame_fixtures
from tests.support.jt808_strategies import escape_by_hand, header_2013, seal_by_hand, xor_of

LIENWATCH = Path(sys.executable).with_name("lienwatch")
T13 = "013912345678"

REPORT = LocationReport(
    alarm=256,
    status=3,
    lat_e6=31_234_567,
    lon_e6=121_512_345,
    altitude_m=12,
    speed_dkmh=605,
    course=90,
    time_bcd=bytes.fromhex("240101120000"),
    extras=((0x01, b"\x00\x00\x30\x39"), (0x30, b"\x19"), (0x31, b"\x09")),
)
GOOD = encode_frame(REPORT, terminal=T13, serial=52).hex()
HEARTBEAT = header_2013(0x0002, 0, T13, 1)
LOCATION_HEAD = header_2013(0x0200, 37, T13, 2)
BLOCK = bytes.fromhex("000001000000000301dc9a07073e2199000c025d005a240101120000")

# One frame per contract error code.
BAD = {
    "bad_checksum": (
        b"\x7e" + escape_by_hand(HEARTBEAT + bytes((xor_of(HEARTBEAT) ^ 1,))) + b"\x7e"
    ).hex(),
    "bad_escape": "7e0002" + "7d03" + seal_by_hand(HEARTBEAT).hex()[6:],
    "truncated": seal_by_hand(HEARTBEAT).hex()[:16],
    "bad_length": seal_by_hand(header_2013(0x0002, 3, T13, 1) + b"\x01\x02").hex(),
    "unknown_message": seal_by_hand(header_2013(0x0F01, 2, T13, 9) + b"\x01\xab").hex(),
    "bad_body": seal_by_hand(LOCATION_HEAD + BLOCK + bytes.fromhex("01040000006431050a")).hex(),
}


def _run(
    args: list[str], stdin: str = ""
) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    done = subprocess.run(
        [str(LIENWATCH), "decode", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return lines, done


def test_the_console_script_is_installed() -> None:
    assert LIENWATCH.is_file()


def test_stdin_lines_give_one_json_object_each_in_order_with_every_error_code_and_exit_0() -> None:
    order = [GOOD, *BAD.values(), GOOD.upper()]
    out, done = _run([], "\n".join(order) + "\n")
    assert done.returncode == 0, done.stderr
    assert len(out) == len(order)
    assert out[0]["body"]["extras"] == {"0x01": 1234.5, "0x30": 25, "0x31": 9}
    assert [o.get("error") for o in out[1:-1]] == list(BAD)
    assert out[-1] == out[0]
    for line, got in zip(BAD.values(), out[1:-1], strict=True):
        assert got["detail"]
        assert got["hex"] == line
    unknown = out[1 + list(BAD).index("unknown_message")]
    assert (unknown["msg_id"], unknown["terminal"], unknown["serial"]) == ("0x0f01", T13, 9)
    assert unknown["body"] == {"raw": "01ab"}


def test_frames_given_as_arguments_decode_in_argument_order() -> None:
    spaced = " ".join(GOOD[i : i + 2] for i in range(0, len(GOOD), 2))
    out, done = _run([BAD["bad_checksum"], spaced, GOOD])
    assert done.returncode == 0
    assert [o.get("error") for o in out] == ["bad_checksum", None, None]
    assert out[1] == out[2]
    assert out[1]["serial"] == 52
    assert out[1]["body"]["time"] == "2024-01-01T12:00:00+08:00"


def test_every_fixture_frame_decodes_through_the_command_as_in_the_library() -> None:
    rows = load_frame_fixtures()
    out, done = _run([], "".join(row["hex"] + "\n" for row in rows))
    assert done.returncode == 0
    assert len(out) == len(rows)
    for row, got in zip(rows, out, strict=True):
        assert got == json.loads(json.dumps(decode_hex_line(row["hex"]), ensure_ascii=False))
