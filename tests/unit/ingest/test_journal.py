"""The write-ahead journal: durability points, recovery of torn tails, bound and drain."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.journal import Journal, JournalError
from ingest.journal_format import HEADER_BYTES
from positions import DeviceIndex, PositionBatch

DEVICES = DeviceIndex(f"0139{i:08d}" for i in range(50))


def batch_of(first_time_ms: int, devices: list[int]) -> PositionBatch:
    n = len(devices)
    return PositionBatch.from_columns(
        {
            "device": devices,
            "time_ms": first_time_ms + np.arange(n),
            "recv_ms": first_time_ms + 1000 + np.arange(n),
            "lon": 121.0 + np.arange(n) / 100,
            "lat": np.full(n, 31.0),
            "alarm": np.full(n, 0x80000100),
            "flags": np.arange(n) % 3,
        }
    )


def positions_of(journal: Journal) -> list[tuple[str, int]]:
    """(terminal, fix time) of every pending position, in journal order."""
    out = []
    for record in journal.pending(max_bytes=1 << 30):
        out += [
            (record.terminals[d], t)
            for d, t in zip(
                record.batch.device.tolist(), record.batch.time_ms.tolist(), strict=True
            )
        ]
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_committed_records_read_back_with_their_terminals_and_columns(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    batch = batch_of(1000, [7, 3, 7, 42])
    lsn = journal.append(batch, DEVICES)
    assert journal.commit() == lsn == 1
    [record] = journal.pending()
    assert record.lsn == 1
    assert [record.terminals[d] for d in record.batch.device] == [
        DEVICES.terminal(i) for i in (7, 3, 7, 42)
    ]
    for name, column in batch.columns().items():
        if name != "device":
            np.testing.assert_array_equal(getattr(record.batch, name), column, err_msg=name)


def test_records_are_pending_only_once_committed(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    journal.append(batch_of(0, [1]), DEVICES)
    journal.commit()
    journal.append(batch_of(10, [2]), DEVICES)
    assert [r.lsn for r in journal.pending()] == [1]
    assert journal.durable_lsn == 1
    journal.commit()
    assert [r.lsn for r in journal.pending()] == [1, 2]


def test_empty_batches_write_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    assert journal.append(batch_of(0, []), DEVICES) == 0
    assert journal.depth_bytes == 0


def test_reopening_replays_what_was_not_drained(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    for i in range(5):
        journal.append(batch_of(i * 100, [i]), DEVICES)
    journal.commit()
    journal.mark_drained(journal.pending(max_bytes=1)[0])
    journal.close()
    reopened = Journal(tmp_path, max_bytes=1 << 20)
    assert [r.lsn for r in reopened.pending()] == [2, 3, 4, 5]
    assert reopened.recovery.pending_records == 4
    assert reopened.append(batch_of(999, [9]), DEVICES) == 6


def test_an_abandoned_journal_reopens_with_every_whole_record(tmp_path: Path) -> None:
    """A crash stand-in: the first object is dropped mid-stream without close or commit."""
    journal = Journal(tmp_path, max_bytes=1 << 20, segment_bytes=2048)
    expected = []
    for i in range(30):
        batch = batch_of(i * 100, [i % 50, (i + 1) % 50])
        journal.append(batch, DEVICES)
        expected += [
            (DEVICES.terminal(i % 50), i * 100),
            (DEVICES.terminal((i + 1) % 50), i * 100 + 1),
        ]
        if i == 10:
            journal.commit()
    del journal
    reopened = Journal(tmp_path, max_bytes=1 << 20, segment_bytes=2048)
    assert positions_of(reopened) == expected
    assert reopened.recovery.truncations == ()


def test_a_torn_tail_is_truncated_and_never_replayed(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        journal.append(batch_of(i * 100, [i]), DEVICES)
    journal.commit()
    journal.close()
    [segment] = segments(tmp_path)
    whole = segment.stat().st_size
    os.truncate(segment, whole - 5)  # the last record's final bytes never reached the disk
    reopened = Journal(tmp_path, max_bytes=1 << 20)
    assert [r.lsn for r in reopened.pending()] == [1, 2]
    [cut] = reopened.recovery.truncations
    assert cut.path == segment
    assert cut.offset + cut.dropped_bytes == whole - 5
    assert segment.stat().st_size == cut.offset
    assert reopened.append(batch_of(5, [5]), DEVICES) == 3
    reopened.commit()
    assert [r.lsn for r in reopened.pending()] == [1, 2, 3]


@pytest.mark.parametrize("where", ["magic", "length", "lsn", "payload"])
def test_a_damaged_record_costs_that_record_alone_and_is_reported(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    for i in range(6):
        journal.append(batch_of(i * 100, [i]), DEVICES)
    journal.commit()
    second_end = journal.pending()[1].end_offset
    journal.close()
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    at = {"magic": 1, "length": 5, "lsn": 9, "payload": HEADER_BYTES + 30}[where]
    data[second_end + at] ^= 0x40
    segment.write_bytes(bytes(data))
    reopened = Journal(tmp_path, max_bytes=1 << 20)
    assert [r.lsn for r in reopened.pending()] == [1, 2, 4, 5, 6]
    [damage] = reopened.recovery.damaged
    assert (damage.path, damage.offset, damage.lost_lsns) == (segment, second_end, (3, 3))
    assert reopened.recovery.lost_records == 1 == reopened.damaged_records
    assert reopened.recovery.truncations == ()
    assert "records 3..3 lost" in caplog.text
    # Appending and draining go on past the damage; it is reported once, not at every read.
    assert reopened.append(batch_of(900, [9]), DEVICES) == 7
    reopened.commit()
    records = reopened.pending()
    assert [r.lsn for r in records] == [1, 2, 4, 5, 6, 7]
    reopened.mark_drained(records[-1])
    assert reopened.damaged_records == 1


def test_damage_found_while_draining_is_stepped_over_and_counted_once(tmp_path: Path) -> None:
    """The disk changes under a running journal: the drain must not stall on it forever."""
    journal = Journal(tmp_path, max_bytes=1 << 20)
    for i in range(5):
        journal.append(batch_of(i * 100, [i]), DEVICES)
    journal.commit()
    third_end = journal.pending()[2].end_offset
    [segment] = segments(tmp_path)
    with segment.open("r+b") as fh:
        fh.seek(third_end + HEADER_BYTES + 3)
        byte = fh.read(1)
        fh.seek(third_end + HEADER_BYTES + 3)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert [r.lsn for r in journal.pending()] == [1, 2, 3, 5]
    assert [r.lsn for r in journal.pending()] == [1, 2, 3, 5]
    assert journal.damaged_records == 1
    journal.mark_drained(journal.pending()[-1])
    assert journal.pending() == []


def test_a_damaged_first_record_is_counted_from_the_segment_name(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        journal.append(batch_of(i * 100, [i]), DEVICES)
    journal.close()
    [segment] = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    data[HEADER_BYTES + 2] ^= 1
    segment.write_bytes(bytes(data))
    reopened = Journal(tmp_path, max_bytes=1 << 20)
    assert [r.lsn for r in reopened.pending()] == [2, 3]
    assert reopened.recovery.lost_records == 1


def test_garbage_after_the_last_record_is_cut(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    journal.append(batch_of(0, [1]), DEVICES)
    journal.close()
    [segment] = segments(tmp_path)
    with segment.open("ab") as fh:
        fh.write(b"\x00" * 100)
    reopened = Journal(tmp_path, max_bytes=1 << 20)
    assert [r.lsn for r in reopened.pending()] == [1]
    assert reopened.recovery.truncations[0].dropped_bytes == 100


def test_the_journal_reports_full_at_its_bound_and_not_after_draining(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=4096)
    while not journal.is_full:
        journal.append(batch_of(journal.last_lsn * 100, [1, 2, 3]), DEVICES)
    assert journal.depth_bytes >= 4096
    journal.append(batch_of(10**6, [4]), DEVICES)  # never refuses: in-flight data is kept
    journal.commit()
    records = journal.pending(max_bytes=1 << 20)
    journal.mark_drained(records[-1])
    assert journal.depth_bytes == 0
    assert not journal.is_full


def test_draining_deletes_segments_once_all_their_records_are_drained(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20, segment_bytes=1024)
    for i in range(20):
        journal.append(batch_of(i * 100, [i, i + 1]), DEVICES)
    journal.commit()
    before = segments(tmp_path)
    assert len(before) > 3
    records = journal.pending(max_bytes=1 << 20)
    drained = records[9].lsn
    journal.mark_drained(records[9])
    # A segment goes once its last lsn (the next segment's first, minus one) is drained.
    kept = [p for p, nxt in itertools.pairwise(before) if int(nxt.stem) > drained + 1]
    assert segments(tmp_path) == [*kept, before[-1]]
    assert len(kept) < len(before) - 1
    journal.mark_drained(records[-1])
    assert segments(tmp_path) == [before[-1]]  # the segment being written stays
    assert journal.pending() == []


def test_pending_reads_at_most_about_max_bytes_and_resumes_after_a_drain(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    for i in range(10):
        journal.append(batch_of(i * 100, [i]), DEVICES)
    journal.commit()
    first = journal.pending(max_bytes=1)
    assert [r.lsn for r in first] == [1]
    assert [r.lsn for r in journal.pending(max_bytes=1)] == [1]  # not drained: same again
    journal.mark_drained(first[0])
    assert [r.lsn for r in journal.pending(max_bytes=1)] == [2]


def test_lsns_are_not_reused_after_every_segment_was_drained_and_deleted(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        journal.append(batch_of(i, [i]), DEVICES)
    journal.commit()
    journal.mark_drained(journal.pending()[-1])
    journal.close()
    reopened = Journal(tmp_path, max_bytes=1 << 20)
    assert segments(tmp_path) == []
    assert reopened.append(batch_of(9, [9]), DEVICES) == 4
    reopened.commit()
    assert [r.lsn for r in reopened.pending()] == [4]


def test_a_record_beyond_the_durable_point_cannot_be_marked_drained(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    journal.append(batch_of(0, [1]), DEVICES)
    journal.commit()
    record = journal.pending()[0]
    journal.close()
    other = tmp_path / "other"
    second = Journal(other, max_bytes=1 << 20)
    with pytest.raises(JournalError, match="not durable"):
        second.mark_drained(record)


def test_a_closed_journal_refuses_appends(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.append(batch_of(0, [1]), DEVICES)


def test_another_process_cannot_open_a_journal_in_use(tmp_path: Path) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    probe = (
        "import sys; from pathlib import Path; from ingest.journal import Journal, "
        "JournalLockedError\ntry:\n Journal(Path(sys.argv[1]), max_bytes=1 << 20)\n"
        "except JournalLockedError as e:\n print('locked', e)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("locked")
    assert "LOCK" in out.stdout
    journal.close()


def test_a_record_written_before_the_device_time_column_reads_back(tmp_path: Path) -> None:
    """Records of the earlier layout (every column but device_time_ms, same order) stay
    readable: a journal left by the previous version drains after an upgrade."""
    from ingest.journal_format import (
        _COUNTS,
        _DISK_DTYPES_V1,
        decode_payload,
        encode_payload,
        encode_record,
    )

    batch = batch_of(1_709_280_000_000, [3, 1, 3])
    terminals = DEVICES.terminals()
    names = "\n".join(terminals).encode("ascii")
    old = _COUNTS.pack(len(batch), len(names)) + names
    old += b"".join(
        np.ascontiguousarray(getattr(batch, n), dtype=d).tobytes()
        for n, d in _DISK_DTYPES_V1.items()
    )
    read, read_terminals = decode_payload(old)
    assert read_terminals == tuple(terminals)
    for name, column in batch.columns().items():
        assert getattr(read, name).tolist() == column.tolist()  # device_time_ms = time_ms
    assert len(encode_payload(batch, terminals)) > len(old)  # new records carry the column
    journal = Journal(tmp_path, max_bytes=1 << 20)
    journal.append(batch, DEVICES)
    journal.commit()
    journal.close()
    [segment] = tmp_path.glob("*.seg")
    segment.write_bytes(encode_record(1, old))  # as the previous version wrote it
    journal = Journal(tmp_path, max_bytes=1 << 20)
    [record] = journal.pending(max_bytes=1 << 30)
    assert record.batch.device_time_ms.tolist() == batch.time_ms.tolist()
    journal.close()
