"""The 0x0200 body: basic block, signs from the status word, items, and vendor tails."""

from __future__ import annotations

import pytest

from ingest.jt808.errors import FrameError, Jt808UsageError
from ingest.jt808.ids import ErrorCode, Status
from ingest.jt808.location import LocationReport, parse_items, typed_extra

# alarm 256, status 3, 31.234567 N, 121.512345 E, 12 m, 60.5 km/h, course 90, 2024-01-01 12:00:00
BLOCK = bytes.fromhex(
    "00000100" "00000003" "01dc9a07" "073e2199" "000c" "025d" "005a" "240101120000"
)  # fmt: skip
TIME_MS = 1_704_081_600_000  # 2024-01-01T04:00:00Z
FIELDS: dict[str, object] = {
    "alarm": 256,
    "status": 3,
    "lat_e6": 31_234_567,
    "lon_e6": 121_512_345,
    "altitude_m": 12,
    "speed_dkmh": 605,
    "course": 90,
    "time_bcd": bytes.fromhex("240101120000"),
}


def _report(**change: object) -> LocationReport:
    return LocationReport(**{**FIELDS, **change})  # type: ignore[arg-type]


def test_the_basic_block_decodes_to_degrees_kmh_and_epoch_ms() -> None:
    report = LocationReport.decode_from(BLOCK)
    assert report == _report()
    assert report.alarm == 256
    assert report.status == 3
    assert report.lat == pytest.approx(31.234567, abs=1e-9)
    assert report.lon == pytest.approx(121.512345, abs=1e-9)
    assert report.altitude_m == 12
    assert report.speed_kmh == pytest.approx(60.5)
    assert report.course == 90
    assert report.time_ms == TIME_MS
    assert report.time_iso == "2024-01-01T12:00:00+08:00"
    assert report.positioned
    assert report.extras == ()
    assert report.raw_tail == b""


@pytest.mark.parametrize(
    ("status", "lat_sign", "lon_sign"),
    [(0, 1, 1), (Status.SOUTH, -1, 1), (Status.WEST, 1, -1), (Status.SOUTH | Status.WEST, -1, -1)],
)
def test_status_bits_2_and_3_give_the_signs(status: int, lat_sign: int, lon_sign: int) -> None:
    body = BLOCK[:4] + int(status).to_bytes(4, "big") + BLOCK[8:]
    report = LocationReport.decode_from(body)
    assert report.lat == pytest.approx(lat_sign * 31.234567, abs=1e-9)
    assert report.lon == pytest.approx(lon_sign * 121.512345, abs=1e-9)
    assert report.positioned is False


def test_a_short_block_is_bad_body() -> None:
    with pytest.raises(FrameError) as info:
        LocationReport.decode_from(BLOCK[:27])
    assert info.value.code is ErrorCode.BAD_BODY


def test_an_invalid_device_time_keeps_the_report_without_a_time() -> None:
    report = LocationReport.decode_from(BLOCK[:22] + bytes.fromhex("241332250000"))
    assert report.time_ms is None
    assert report.time_iso is None
    assert report.lat == pytest.approx(31.234567, abs=1e-9)


def test_items_are_kept_by_id_in_order_including_unknown_and_repeated_ones() -> None:
    tail = bytes.fromhex("010400003039300119e103abcdef310109e100")
    report = LocationReport.decode_from(BLOCK + tail)
    assert report.extras == (
        (0x01, b"\x00\x00\x30\x39"),
        (0x30, b"\x19"),
        (0xE1, b"\xab\xcd\xef"),
        (0x31, b"\x09"),
        (0xE1, b""),
    )
    assert report.item(0x31) == b"\x09"
    assert report.item(0xE1) == b"\xab\xcd\xef"
    assert report.item(0x02) is None
    assert report.raw_tail == b""


def test_an_18_byte_vendor_structure_is_kept_raw_and_the_location_decodes() -> None:
    tail = bytes.fromhex("64000f42400c80000000011f000000000000")
    assert len(tail) == 18
    report = LocationReport.decode_from(BLOCK + tail)
    assert report.raw_tail == tail
    assert report.extras == ()
    assert report.lat == pytest.approx(31.234567, abs=1e-9)
    assert report.time_ms == TIME_MS


def test_a_lone_trailing_byte_after_the_block_is_a_vendor_tail() -> None:
    report = LocationReport.decode_from(BLOCK + b"\x55")
    assert report.raw_tail == b"\x55"


@pytest.mark.parametrize(
    "tail",
    [
        "010400000064" "31050a",  # mileage, then satellites declares 5 bytes
        "300119" "3101",  # signal, then satellites without its value
        "020201f4" "01",  # fuel, then an id with no length
        "e10100" "2504000000000102",  # a vendor item, a standard one, a broken one
    ],
)  # fmt: skip
def test_a_chain_of_standard_items_that_breaks_is_bad_body(tail: str) -> None:
    with pytest.raises(FrameError) as info:
        LocationReport.decode_from(BLOCK + bytes.fromhex(tail))
    assert info.value.code is ErrorCode.BAD_BODY
    assert "item" in info.value.detail


def test_parse_items_starts_at_the_given_offset() -> None:
    items, tail = parse_items(b"xx" + bytes.fromhex("300119"), 2)
    assert items == ((0x30, b"\x19"),)
    assert tail == b""


def test_a_report_encodes_back_to_its_bytes() -> None:
    tail = bytes.fromhex("010400003039300119")
    assert LocationReport.decode_from(BLOCK + tail).encode_body() == BLOCK + tail
    vendor = bytes.fromhex("64000f42400c80000000011f000000000000")
    assert LocationReport.decode_from(BLOCK + vendor).encode_body() == BLOCK + vendor


def test_at_builds_a_report_from_signed_degrees_and_epoch_ms() -> None:
    report = LocationReport.at(
        lon=-121.512345, lat=-31.234567, time_ms=TIME_MS + 999, speed_kmh=60.5, course=90
    )
    assert report.lat_e6 == 31_234_567
    assert report.lon_e6 == 121_512_345
    assert report.status & Status.SOUTH
    assert report.status & Status.WEST
    assert report.status & Status.POSITIONED
    assert report.speed_dkmh == 605
    assert report.time_bcd == bytes.fromhex("240101120000")
    assert report.lon == pytest.approx(-121.512345, abs=1e-9)


def test_at_clears_stale_sign_bits_for_a_north_east_fix() -> None:
    report = LocationReport.at(
        lon=121.0, lat=31.0, time_ms=TIME_MS, status=Status.SOUTH | Status.WEST | Status.ACC_ON
    )
    assert report.status == int(Status.ACC_ON)


@pytest.mark.parametrize(
    "change",
    [{"alarm": 1 << 32}, {"lat_e6": -1}, {"course": 65536}, {"time_bcd": b"\x24\x01"}],
)
def test_encoding_a_field_out_of_range_is_a_usage_error(change: dict[str, object]) -> None:
    report = _report(**change)
    with pytest.raises(Jt808UsageError):
        report.encode_body()


def test_an_item_longer_than_255_bytes_cannot_be_encoded() -> None:
    report = _report(extras=((0xE1, bytes(256)),))
    with pytest.raises(Jt808UsageError):
        report.encode_body()


@pytest.mark.parametrize(
    ("item_id", "value", "typed"),
    [
        (0x01, "00003039", 1234.5),
        (0x02, "01f4", 50.0),
        (0x03, "0258", 60.0),
        (0x30, "19", 25),
        (0x31, "09", 9),
        (0x01, "3039", "3039"),  # wrong length: kept as hex
        (0x25, "00000001", "00000001"),
        (0xE1, "", ""),
    ],
)
def test_typed_extras_scale_mileage_fuel_and_speed_and_keep_others_as_hex(
    item_id: int, value: str, typed: float | int | str
) -> None:
    assert typed_extra(item_id, bytes.fromhex(value)) == typed
    assert type(typed_extra(item_id, bytes.fromhex(value))) is type(typed)
