"""Load mode's batch ack parser and ring sizing, checked against the codec."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.jt808 import Edition, encode_frame
from ingest.jt808.codec import decode_frame
from ingest.jt808.location import LocationReport
from ingest.jt808.messages import PlatformGeneralResponse, SetParameters
from simulators.load import POWER_CUT, Fleet, LoadConfig, parse_answers, ring_size


def answers(edition: Edition, n: int) -> list[bytes]:
    # Serials 0x7d00.. and 0x7e00.. force escapes in some frames.
    return [
        encode_frame(
            PlatformGeneralResponse((0x7D00 + 37 * i) & 0xFFFF, 0x0200, i % 2),
            terminal="13900000001",
            serial=(0x7E7D + i) & 0xFFFF,
            edition=edition,
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
def test_answers_split_anywhere_across_chunks_are_all_found(edition: Edition) -> None:
    frames = answers(edition, 300)
    assert any(b"\x7d" in f for f in frames)  # both paths are exercised
    stream = b"".join(frames)
    cuts = sorted(np.random.default_rng(1).choice(len(stream), 40, replace=False).tolist())
    # A stream transport keeps everything from the last flag for the next read.
    chunks, rest = [], b""
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        buf = rest + stream[a:b]
        cut = buf.rfind(b"\x7e")
        if cut > 0:
            chunks.append(buf[:cut])
        rest = buf[max(cut, 0) :]
    chunks.append(rest)
    found = parse_answers(chunks, edition)
    expected = sorted(((0x7D00 + 37 * i) & 0xFFFF, i % 2) for i in range(300))
    got = sorted(zip(found.serial.tolist(), found.result.tolist(), strict=True))
    assert got == expected
    assert found.others == []


def test_other_platform_messages_are_handed_over_unescaped() -> None:
    command = encode_frame(SetParameters(((0x29, b"\x00\x00\x00\x05"),)), terminal="1", serial=9)
    found = parse_answers([command[:-1], b"\x7e"], Edition.V2013)
    assert len(found.serial) == 0
    ((chunk, content),) = found.others
    assert chunk == 0
    assert content[:2] == b"\x81\x03"


def test_a_corrupt_frame_is_reported_as_empty_content() -> None:
    frame = bytearray(answers(Edition.V2013, 1)[0])
    frame[5] ^= 0x01
    found = parse_answers([bytes(frame)], Edition.V2013)
    assert len(found.serial) == 0
    assert found.others == [(0, b"")]


def test_ring_holds_ten_seconds_of_one_devices_reports_as_a_power_of_two() -> None:
    assert ring_size(5000, 100_000) == 256
    assert ring_size(10, 100_000) == 65536
    assert ring_size(1000, 10) == 64


@pytest.mark.parametrize("encoder", ["vector", "scalar"])
def test_the_first_power_cut_trackers_report_the_alarm_in_every_report(encoder: str) -> None:
    cfg = LoadConfig("127.0.0.1", 1, 6, 10.0, 1.0, encoder=encoder, power_cut=2)
    fleet = Fleet(cfg)
    fleet.alive[:] = True
    frames: list[tuple[int, bytes]] = []
    fleet.write = lambda device, data: frames.append((device, data))
    fleet.join_frames = False
    devices = np.repeat(np.arange(6, dtype=np.int64), 2)
    fleet.send(devices, np.full(12, 1.0), 1_709_280_000_000, 0.0)
    alarms: dict[int, set[int]] = {}
    for device, frame in frames:
        report = decode_frame(frame).body
        assert isinstance(report, LocationReport)
        alarms.setdefault(device, set()).add(report.alarm)
    assert alarms == {0: {POWER_CUT}, 1: {POWER_CUT}, 2: {0}, 3: {0}, 4: {0}, 5: {0}}
    with pytest.raises(ValueError, match="power-cut"):
        LoadConfig("127.0.0.1", 1, 6, 10.0, 1.0, power_cut=7)
