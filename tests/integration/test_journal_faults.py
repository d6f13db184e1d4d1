"""The journal under real faults: a full tmpfs and a failing fdatasync (issued by the kernel's
own system call, failed by strace), never a monkeypatched function."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from ingest.journal import Journal, JournalFullError
from ingest.journal_format import read_frame
from positions import DeviceIndex, PositionBatch
from tests.support.faults import NEEDS_ROOT, NEEDS_STRACE, fill, small_tmpfs

pytestmark = NEEDS_ROOT

DEVICES = DeviceIndex(f"0139{i:08d}" for i in range(500))


def batch(i: int, rows: int = 200) -> PositionBatch:
    return PositionBatch.from_columns(
        {
            "device": np.arange(rows) % 500,
            "time_ms": i * 1_000_000 + np.arange(rows),
            "recv_ms": i * 1_000_000 + np.arange(rows),
            "lon": np.full(rows, 120.1),
            "lat": np.full(rows, 30.2),
        }
    )


def whole_records(path: Path) -> int:
    """Records in a segment file, asserting nothing but whole records is in it."""
    data = path.read_bytes()
    offset = count = 0
    while offset < len(data):
        frame = read_frame(data, offset)
        assert frame is not None, f"{path}: bytes at {offset} are not a whole record"
        offset, count = frame.end, count + 1
    return count


def append_until_full(journal: Journal) -> int:
    """Appends until the disk refuses; returns the last lsn written."""
    for i in range(10_000):
        try:
            journal.append(batch(i), DEVICES)
        except JournalFullError as exc:
            assert "no space left" in str(exc)
            return journal.last_lsn
    raise AssertionError("the disk never filled")


def test_a_full_disk_leaves_no_torn_record_and_the_drain_gives_the_space_back() -> None:
    with small_tmpfs(1 << 20) as disk:
        journal = Journal(disk / "journal", max_bytes=1 << 30)
        appended = append_until_full(journal)
        assert appended > 5
        assert journal.out_of_space
        assert journal.last_lsn == appended
        [segment] = sorted((disk / "journal").glob("*.seg"))
        assert whole_records(segment) == appended  # the failed record left nothing behind
        assert journal.commit() == appended
        records = journal.pending(max_bytes=1 << 30)
        assert [r.lsn for r in records] == list(range(1, appended + 1))
        # Draining everything deletes the full segment though it was being written.
        journal.mark_drained(records[-1])
        assert not segment.exists()
        assert journal.append(batch(10_000), DEVICES) == appended + 1
        assert not journal.out_of_space
        journal.commit()
        journal.close()
        reopened = Journal(disk / "journal", max_bytes=1 << 30)
        assert [r.lsn for r in reopened.pending()] == [appended + 1]
        assert reopened.recovery.truncations == () and reopened.recovery.damaged == ()
        reopened.close()


def test_the_checkpoint_is_written_on_a_full_disk() -> None:
    """The drained point must move on a full disk, or replays grow without end."""
    with small_tmpfs(1 << 20) as disk:
        journal = Journal(disk / "journal", max_bytes=1 << 30, segment_bytes=64 * 1024)
        for i in range(3):
            journal.append(batch(i, rows=20), DEVICES)
        journal.commit()
        journal.mark_drained(journal.pending()[0])  # the checkpoint file exists from here
        fill(disk)
        journal.mark_drained(journal.pending()[-1])
        journal.close()
        reopened = Journal(disk / "journal", max_bytes=1 << 30)
        assert reopened.pending() == []
        assert reopened.drained_lsn == 3
        reopened.close()


def test_appends_resume_by_themselves_when_space_returns() -> None:
    with small_tmpfs(1 << 20) as disk:
        journal = Journal(disk / "journal", max_bytes=1 << 30)
        journal.append(batch(0), DEVICES)
        journal.commit()
        filler = fill(disk)
        lsn = append_until_full(journal)
        filler.unlink()
        assert journal.append(batch(500), DEVICES) == lsn + 1
        assert journal.commit() == lsn + 1
        [segment] = sorted((disk / "journal").glob("*.seg"))
        assert whole_records(segment) == lsn + 1
        journal.close()


_FSYNC_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ingest.journal import Journal, JournalSyncError
    from positions import DeviceIndex, PositionBatch

    devices = DeviceIndex(["013900000001"])
    def one(t):
        return PositionBatch.from_columns({"device": [0], "time_ms": [t], "recv_ms": [t],
                                           "lon": [120.0], "lat": [30.0]})
    journal = Journal(sys.argv[1], max_bytes=1 << 20)
    journal.append(one(1), devices)
    print("durable", journal.commit(), flush=True)
    journal.append(one(2), devices)
    try:
        journal.commit()
    except JournalSyncError as exc:
        print("sync failed", exc, flush=True)
    for call in (lambda: journal.commit(), lambda: journal.append(one(3), devices)):
        try:
            call()
            print("accepted after the failure", flush=True)
        except JournalSyncError:
            print("refused after the failure", flush=True)
    print("durable after", journal.durable_lsn, flush=True)
    """
)


@NEEDS_STRACE
def test_a_failed_fdatasync_is_final_and_restart_recovers(tmp_path: Path) -> None:
    # The first fdatasync goes through; the second and every later one fail with EIO.
    out = subprocess.run(
        [
            "strace", "-f", "-qq", "-o", "/dev/null",
            "-e", "trace=fdatasync", "-e", "inject=fdatasync:error=EIO:when=2+",
            sys.executable, "-c", _FSYNC_SCRIPT, str(tmp_path / "journal"),
        ],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out[0] == "durable 1"
    assert out[1].startswith("sync failed")
    assert out[2:] == [
        "refused after the failure",
        "refused after the failure",
        "durable after 1",
    ]
    # The kernel still had the pages (only the call was failed): restart reads both records.
    reopened = Journal(tmp_path / "journal", max_bytes=1 << 20)
    assert [r.lsn for r in reopened.pending()] == [1, 2]
    reopened.close()
