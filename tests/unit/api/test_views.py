"""Stored positions in the JSON of `lienwatch decode`'s location body."""

from __future__ import annotations

from api.views import flag_names, position_json, positions_json
from ingest.jt808.jsonview import decode_hex_line
from positions import Flag, PositionBatch

CONTRACT_FRAME = (
    "7e020000280139123456780034000001000000000301dc9a07073e2199000c025d005a24010112000001"
    "0400003039300119310109cf7e"
)


def batch(**columns: list[object]) -> PositionBatch:
    n = len(next(iter(columns.values())))
    return PositionBatch.from_columns({"device": [0] * n, **columns})


def test_a_stored_position_reads_like_the_decoded_frame_it_came_from() -> None:
    decoded = decode_hex_line(CONTRACT_FRAME)["body"]
    stored = batch(
        time_ms=[1_704_081_600_000],
        recv_ms=[1_704_081_600_000],
        lon=[decoded["lon"]],
        lat=[decoded["lat"]],
        speed_kmh=[decoded["speed_kmh"]],  # kept as float32: read back exactly
        course=[decoded["course"]],
        altitude_m=[decoded["altitude_m"]],
        alarm=[decoded["alarm"]],
        status=[decoded["status"]],
    )
    out = position_json(stored, 0)
    assert {k: out[k] for k in decoded if k != "extras"} == {
        k: v for k, v in decoded.items() if k != "extras"
    }
    assert out["valid"] is True and out["flags"] == []


def test_a_time_no_device_could_send_is_still_shown_and_flagged() -> None:
    stored = batch(time_ms=[0], recv_ms=[5], status=[3], flags=[int(Flag.BAD_TIME)])
    out = positions_json(stored)[0]
    assert out["time"] == "1970-01-01T08:00:00+08:00"
    assert out["flags"] == ["bad_time"] and out["valid"] is False
    assert "time_raw" not in out


def test_flags_are_named_in_lower_case() -> None:
    assert flag_names(int(Flag.BACKFILL | Flag.IMPLAUSIBLE)) == ["backfill", "implausible"]
    assert flag_names(0) == []
