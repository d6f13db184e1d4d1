"""POSITIONS.csv reading: any column order, defaults, and bad rows named by line and field."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from pipeline.csv_positions import (
    CsvFormatError,
    device_indexes,
    read_positions_csv,
    read_positions_file,
)
from positions import DeviceIndex


def test_columns_in_any_order_with_extras_ignored_and_missing_words_as_zero() -> None:
    data = (
        b"lon,extra,lat,time,device_id,speed_kmh\n"
        b"121.5,x,31.25,2024-03-01T14:30:00+08:00,013900000001,61.5\n"
        b"121.6,y,31.26,1709274660,013900000002,0\n"
    )
    rows = read_positions_csv(data)
    assert rows.device_id.tolist() == [b"013900000001", b"013900000002"]
    assert rows.time_ms.tolist() == [1_709_274_600_000, 1_709_274_660_000]
    assert rows.lon.tolist() == [121.5, 121.6]
    assert rows.lat.tolist() == [31.25, 31.26]
    assert rows.speed_kmh.tolist() == [61.5, 0.0]
    assert rows.alarm.tolist() == [0, 0]
    assert rows.status.tolist() == [0, 0]
    assert rows.errors == []
    assert rows.bulk


def test_bad_rows_are_reported_by_line_and_field_and_good_rows_kept() -> None:
    data = (
        b"device_id,time,lat,lon,alarm\n"
        b"A,2024-03-01T14:30:00+08:00,31.2,121.4,0\n"
        b"A,yesterday,31.2,121.4,0\n"
        b"\n"
        b"A,2024-03-01T14:31:00+08:00,north,121.4,0\n"
        b"A,2024-03-01T14:32:00+08:00,31.2,121.4,-1\n"
        b",2024-03-01T14:33:00+08:00,31.2,121.4,0\n"
        b"A,2024-03-01T14:34:00+08:00,31.2,121.4,\n"
    )
    rows = read_positions_csv(data, "p.csv")
    assert not rows.bulk
    assert rows.line.tolist() == [2, 8]
    assert [e.describe("p.csv") for e in rows.errors] == [
        "p.csv:3: field time: 'yesterday' is not ISO 8601 with offset or epoch seconds",
        "p.csv:5: field lat: 'north' is not a number",
        "p.csv:6: field alarm: -1 is not a 32-bit word",
        "p.csv:7: field device_id: empty",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "p.csv:1: field header: empty file or no header row"),
        (b"device_id,time,lat\n", "p.csv:1: field lon: required column missing"),
    ],
)
def test_a_file_without_the_required_header_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message):
        read_positions_csv(data, "p.csv")


def test_device_ids_map_to_stable_dense_indexes() -> None:
    index = DeviceIndex(["B"])
    ids = np.array([b"A", b"B", b"A", b"C"], dtype="S40")
    assert device_indexes(ids, index).tolist() == [1, 0, 1, 2]
    assert index.terminals() == ["B", "A", "C"]


def test_utf8_ids_and_a_byte_order_mark_survive_the_bulk_path() -> None:
    data = "\ufeffdevice_id,time,lat,lon\n粤B12345,1709274600,31.2,121.4\n".encode()
    rows = read_positions_csv(data)
    assert rows.bulk
    assert rows.device_id.tolist() == ["粤B12345".encode()]
    assert device_indexes(rows.device_id, DeviceIndex()).tolist() == [0]


def test_an_id_longer_than_the_bulk_width_is_still_read_exactly() -> None:
    long_id = "X" * 30
    rows = read_positions_csv(f"device_id,time,lat,lon\n{long_id},1709274600,31.2,121.4\n".encode())
    assert rows.errors == []
    assert rows.device_id.tolist() == [long_id.encode()]


@pytest.mark.parametrize(
    "received",
    [
        (b"2024-03-01T22:30:01+08:00", b"2024-03-01T22:31:02+08:00"),  # ISO (Arrow's path)
        (b"1709303401", b"1709303462"),  # epoch seconds, as `time` may be
    ],
)
def test_a_received_column_is_read_in_the_formats_of_time(received: tuple[bytes, bytes]) -> None:
    data = (
        b"device_id,time,received,lat,lon\n"
        b"A,2024-03-01T14:30:00+08:00," + received[0] + b",31.2,121.4\n"
        b"A,1709274660," + received[1] + b",31.2,121.4\n"
    )
    rows = read_positions_csv(data)
    assert rows.recv_ms is not None
    assert rows.recv_ms.tolist() == [1_709_303_401_000, 1_709_303_462_000]
    assert rows.errors == []


def test_an_empty_received_value_takes_the_time_and_a_bad_one_is_reported() -> None:
    data = (
        b"device_id,time,received,lat,lon\n"
        b"A,2024-03-01T14:30:00+08:00,,31.2,121.4\n"
        b"A,2024-03-01T14:31:00+08:00,later,31.2,121.4\n"
        b"A,2024-03-01T14:32:00+08:00,2024-03-01T14:32:05+08:00,31.2,121.4\n"
    )
    rows = read_positions_csv(data, "p.csv")
    assert rows.recv_ms is not None
    assert rows.recv_ms.tolist() == [1_709_274_600_000, 1_709_274_725_000]
    assert rows.line.tolist() == [2, 4]
    assert [e.describe("p.csv") for e in rows.errors] == [
        "p.csv:3: field received: 'later' is not ISO 8601 with offset or epoch seconds"
    ]


def test_without_a_received_column_there_are_no_receive_times() -> None:
    rows = read_positions_csv(b"device_id,time,lat,lon\nA,1709274660,31.2,121.4\n")
    assert rows.recv_ms is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("bad_row", [b"", b"D9,not a time,31.2,121.4,1,1\n"])
def test_a_file_and_a_pipe_read_as_their_bytes(tmp_path: Path, bad_row: bytes) -> None:
    """Arrow reads a well-formed regular file from disk; a pipe, read once, is read as bytes."""
    data = (
        b"device_id,time,lat,lon,course,alarm\n"
        + b"".join(
            b"D%d,2024-03-01T08:00:%02d+08:00,31.2,121.4,%d,%d\n" % (i % 3, i, i * 7, i * 99)
            for i in range(50)
        )
        + bad_row
    )
    expected = read_positions_csv(data, "p.csv")
    regular = tmp_path / "positions.csv"
    regular.write_bytes(data)
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_bytes, args=(data,))
    writer.start()
    try:
        for rows in (read_positions_file(regular, "p.csv"), read_positions_file(pipe, "p.csv")):
            assert rows.device_id.tolist() == expected.device_id.tolist()
            assert rows.time_ms.tolist() == expected.time_ms.tolist()
            assert rows.course.tolist() == expected.course.tolist()
            assert rows.alarm.tolist() == expected.alarm.tolist()
            assert rows.line.tolist() == expected.line.tolist()
            assert [(e.line, e.field) for e in rows.errors] == [(52, "time")] * len(bad_row[:1])
    finally:
        writer.join()
