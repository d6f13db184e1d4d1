"""The journal's files: recovery of its segments at open, reading records back past damage,
and the drained checkpoint.

Recovery reads every segment once: a record that does not verify (or whose lsn does not grow)
is stepped over to the next one that does, and the gap noted as damage; the bytes after a
segment's last whole record (a torn tail) are cut; segments the checkpoint says are wholly in
the store are deleted; the last segment stays open for appending. The drain's reads step over
damage the same way. See `ingest.journal`.

A damaged record (a bad sector, a flipped bit) costs that record alone: every record starts with
a magic and is covered end to end by its CRC, so reading steps to the next record that verifies
(`journal_format.next_frame`). Lsns are consecutive, so the gap says how many records were lost.
Only a torn tail (the end of a segment, where a crash leaves a record that was never
acknowledged) is cut away.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ingest.journal_format import (
    HEADER,
    HEADER_BYTES,
    JournalRecord,
    decode_payload,
    next_frame,
    payload_of,
    read_frame,
)

log = logging.getLogger("ingest.journal")

SEGMENT_SUFFIX = ".seg"
CHECKPOINT_NAME = "drained"
CHECKPOINT = struct.Struct("<QI")


class JournalError(RuntimeError):
    """The journal cannot be used as asked; the message names the file."""


class JournalLockedError(JournalError):
    """Another process has this journal directory open."""


class JournalFullError(JournalError):
    """An append found no room on the disk; nothing of the record was kept."""


class JournalSyncError(JournalError):
    """An fsync failed: nothing appended since the last good commit will ever be durable."""


@dataclass(slots=True)
class Segment:
    first_lsn: int
    path: Path
    base: int  # offset of its first byte in the logical stream (segments laid end to end)
    size: int
    last_lsn: int  # 0 while empty
    fd: int | None = None  # open while being written, and after rotation until its fsync


@dataclass(frozen=True, slots=True)
class Truncation:
    """Bytes cut from a segment at recovery: a torn or corrupt tail."""

    path: Path
    offset: int
    dropped_bytes: int


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that held no readable record, between two that did (or a segment's cut tail).

    `lost_lsns` is the first and last lsn the damage swallowed, known from the lsns on each
    side; None when no record follows (a torn tail, usually one never acknowledged).
    """

    path: Path
    offset: int
    dropped_bytes: int
    lost_lsns: tuple[int, int] | None

    @property
    def lost_records(self) -> int:
        return 0 if self.lost_lsns is None else self.lost_lsns[1] - self.lost_lsns[0] + 1


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the directory found."""

    segments: int
    records: int
    pending_records: int
    truncations: tuple[Truncation, ...]
    damaged: tuple[Damage, ...] = ()

    @property
    def lost_records(self) -> int:
        return sum(d.lost_records for d in self.damaged)


@dataclass(slots=True)
class Recovered:
    """What `recover` hands the journal: its segments and offsets, and the report."""

    segments: list[Segment]
    damaged: dict[int, int]  # logical [start, end) ranges that hold no readable record
    end_offset: int
    last_lsn: int
    drained_offset: int
    report: RecoveryReport


def recover(directory: Path, drained_lsn: int) -> Recovered:
    """Reads every segment of `directory`: cuts torn tails, deletes segments wholly drained,
    notes damaged ranges, and opens the last segment for appending."""
    paths = sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))
    segments: list[Segment] = []
    damaged_at: dict[int, int] = {}
    truncations: list[Truncation] = []
    damaged: list[Damage] = []
    base = 0
    last_lsn = 0  # lsns only grow: a record that does not is garbage, like a bad checksum
    # A segment is named by the first lsn it was opened for, so its name alone keeps lsns
    # from being reused when it is empty and older segments and the checkpoint are gone.
    name_floor = max((int(p.stem) - 1 for p in paths if p.stem.isdigit()), default=0)
    drained_offset = 0
    records = pending = 0
    cut_tail: tuple[Path, int, int] | None = None  # a cut whose lost lsns the next tells
    for path in paths:
        data = path.read_bytes()
        offset, seg_last = 0, 0
        while offset < len(data):
            frame = read_frame(data, offset)
            if frame is None or frame.lsn <= last_lsn:
                following = next_frame(data, offset + 1, last_lsn)
                if following is None:
                    break
                first_lost = last_lsn + 1 if last_lsn else int(path.stem)
                lost = (first_lost, following.lsn - 1)
                dropped = following.start - offset
                damaged.append(Damage(path, offset, dropped, lost if lost[0] <= lost[1] else None))
                damaged_at[base + offset] = base + following.start
                offset = following.start
                continue
            if cut_tail is not None:
                if last_lsn and frame.lsn > last_lsn + 1:
                    lost_lsns = (last_lsn + 1, frame.lsn - 1)
                    damaged.append(Damage(cut_tail[0], cut_tail[1], cut_tail[2], lost_lsns))
                cut_tail = None
            offset, seg_last, last_lsn = frame.end, frame.lsn, frame.lsn
            records += 1
            if frame.lsn <= drained_lsn:
                drained_offset = base + frame.end
            else:
                pending += 1
        if offset < len(data):
            truncations.append(Truncation(path, offset, len(data) - offset))
            cut_tail = (path, offset, len(data) - offset)
            os.truncate(path, offset)
            fsync_path(path)
        if offset == 0:
            path.unlink()
            continue
        segments.append(Segment(int(path.stem), path, base, offset, seg_last))
        base += offset
    end_offset = base
    # Never reuse an lsn the checkpoint or a segment's name covers, even when records are gone.
    last_lsn = max(last_lsn, drained_lsn, name_floor)
    drained_offset = drained_offset if pending else base
    # Damage the store already holds behind the checkpoint was drained: nothing to report.
    damaged = [d for d in damaged if d.lost_lsns is None or d.lost_lsns[1] > drained_lsn]
    # Segments wholly drained before the crash are deleted now; the last stays writable.
    for segment in list(segments):
        if segment.base + segment.size <= drained_offset:
            segment.path.unlink()
            segments.remove(segment)
    if segments:
        tail = segments[-1]
        tail.fd = os.open(tail.path, os.O_WRONLY | os.O_APPEND)
    if truncations or len(paths) != len(segments):
        fsync_directory(directory)
    report = RecoveryReport(len(paths), records, pending, tuple(truncations), tuple(damaged))
    return Recovered(segments, damaged_at, end_offset, last_lsn, drained_offset, report)


class Checkpoint:
    """The `drained` file: the last lsn the store holds, with its CRC, rewritten in place."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / CHECKPOINT_NAME
        self._fd: int | None = None

    def read(self) -> int:
        """0 when the file is missing or unreadable (everything replays; writes are idempotent)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        if len(data) != CHECKPOINT.size:
            return 0
        lsn, crc = CHECKPOINT.unpack(data)
        return int(lsn) if zlib.crc32(data[:8]) == crc else 0

    def write(self, lsn: int) -> None:
        """Rewrites the 12 bytes in place: no new block is needed, so a full disk does not stop
        it; a torn write fails its CRC and only replays records already stored. Raises OSError."""
        packed = struct.pack("<Q", lsn)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fsync_directory(self.directory)
        os.pwrite(self._fd, packed + struct.pack("<I", zlib.crc32(packed)), 0)
        os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(slots=True)
class SegmentRead:
    records: list[JournalRecord] = field(default_factory=list)
    taken: int = 0  # bytes of the records read
    previous_lsn: int = 0
    # damage found: (damage, logical start, logical end of the range to skip from now on)
    damaged: list[tuple[Damage, int, int]] = field(default_factory=list)


def read_segment(
    path: Path,
    base: int,
    offset: int,
    limit: int,
    skip: Mapping[int, int],
    previous_lsn: int,
    max_bytes: int,
) -> SegmentRead:
    """Records of one segment from `offset` to `limit` (at least one, then up to about
    `max_bytes`), stepping over the ranges `skip` names and any record that does not verify."""
    read = SegmentRead(previous_lsn=previous_lsn)
    fd = os.open(path, os.O_RDONLY)
    try:
        while offset < limit and (not read.records or read.taken < max_bytes):
            if (skip_to := skip.get(base + offset)) is not None:
                offset = skip_to - base
                continue
            blob = _read_record_at(fd, offset, limit)
            frame = read_frame(blob, 0) if blob is not None else None
            if blob is None or frame is None:
                offset = _step_over(fd, path, base, offset, limit, read)
                continue
            batch, terminals = decode_payload(payload_of(blob, frame))
            offset += frame.end
            read.taken += frame.end
            read.previous_lsn = frame.lsn
            read.records.append(JournalRecord(frame.lsn, batch, terminals, base + offset))
    finally:
        os.close(fd)
    return read


def _step_over(fd: int, path: Path, base: int, offset: int, limit: int, read: SegmentRead) -> int:
    """Where reading goes on after a damaged record at `offset`; notes the damage."""
    data = os.pread(fd, limit - offset, offset)
    after = next_frame(data, 1, read.previous_lsn)
    end = offset + (after.start if after is not None else len(data))
    lost = (read.previous_lsn + 1, after.lsn - 1) if after is not None else None
    if lost is not None and lost[0] > lost[1]:
        lost = None
    read.damaged.append((Damage(path, offset, end - offset, lost), base + offset, base + end))
    return end


def log_damage(damage: Damage, when: str) -> None:
    lost = (
        f"records {damage.lost_lsns[0]}..{damage.lost_lsns[1]} lost"
        if damage.lost_lsns is not None
        else "no record after it"
    )
    log.error(
        "journal %s: %d damaged bytes at %s offset %d (%s)",
        when,
        damage.dropped_bytes,
        damage.path,
        damage.offset,
        lost,
    )


def _read_record_at(fd: int, offset: int, limit: int) -> bytes | None:
    """The bytes of the record at `offset` as its header sizes it; None when it cannot fit."""
    head = os.pread(fd, HEADER_BYTES, offset)
    if len(head) < HEADER_BYTES:
        return None
    length = HEADER.unpack(head)[1]
    if offset + HEADER_BYTES + length > limit:
        return None
    return head + os.pread(fd, length, offset + HEADER_BYTES)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    fsync_path(directory)


def lock_directory(directory: Path) -> int:
    """Takes the directory's LOCK, so two processes never write one journal; returns its fd.

    POSIX record locks belong to the process: another process is refused, while this one may
    reopen the directory (as a restart test does after abandoning an instance)."""
    path = directory / "LOCK"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise JournalLockedError(f"{path}: journal in use by another process") from exc
    return fd


def new_segment(directory: Path, lsn: int, base: int) -> Segment:
    """A new, empty segment named by the first lsn it is for, open for appending."""
    path = directory / f"{lsn:020d}{SEGMENT_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    return Segment(lsn, path, base, 0, 0, fd)


def close_segment(segment: Segment) -> None:
    if segment.fd is not None:
        os.close(segment.fd)
        segment.fd = None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
