"""The local write-ahead journal: a position is durable here before its report is acknowledged.

A directory of segment files (`<first lsn>.seg`, records as in `journal_format`), a `drained`
checkpoint naming the last record the store holds, and a `LOCK` file so two processes never
write one journal.

Threading, without asyncio (the gateway drives it from its event loop):
- `append` writes one record with a plain `os.write` into the page cache, no fsync: cheap enough
  to call on the event loop thread. It returns the record's lsn.
- `commit` fsyncs everything appended so far and returns the lsn now durable. It blocks for the
  disk's flush time, so the gateway runs it through `loop.run_in_executor` every
  `journal_commit_ms` while appends are pending (group commit), then acknowledges the reports
  whose lsn is at most the returned one. One commit runs at a time; appends go on meanwhile.
- `pending` and `mark_drained` are for one drainer thread (see `journal_drain`): it reads durable
  records, writes them to the store, then marks them drained; fully drained segments are deleted.
- `is_full` says the undrained bytes reached `max_bytes`: the gateway then pauses reading its
  sockets (TCP backpressure). `append` never refuses, so nothing already read is dropped; the
  bound is overshot by at most what is in flight when reading pauses.

Recovery on open: each segment is scanned and its first record that is torn or fails its
checksum, and everything after it in that segment, is truncated away (only records never
acknowledged can be there). Records after the checkpoint are pending again: replays are
harmless because the store's writes are idempotent.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from ingest.journal_format import (
    HEADER,
    HEADER_BYTES,
    JournalRecord,
    decode_payload,
    encode_payload,
    encode_record,
    payload_of,
    read_frame,
)
from positions import DeviceIndex, PositionBatch

SEGMENT_SUFFIX = ".seg"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_PENDING_BYTES = 8 * 1024 * 1024
_CHECKPOINT = struct.Struct("<QI")


class JournalError(RuntimeError):
    """The journal cannot be used as asked; the message names the file."""


class JournalLockedError(JournalError):
    """Another process has this journal directory open."""


class JournalCorruptError(JournalError):
    """A record that was durable no longer reads back: the disk changed under us."""


@dataclass(slots=True)
class _Segment:
    first_lsn: int
    path: Path
    base: int  # offset of its first byte in the logical stream (segments laid end to end)
    size: int
    last_lsn: int  # 0 while empty


@dataclass(frozen=True, slots=True)
class Truncation:
    """Bytes cut from a segment at recovery: a torn or corrupt tail."""

    path: Path
    offset: int
    dropped_bytes: int


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the directory found."""

    segments: int
    records: int
    pending_records: int
    truncations: tuple[Truncation, ...]


class Journal:
    """Append-only, checksummed, segmented, group-committed; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if max_bytes <= 0 or segment_bytes <= HEADER_BYTES:
            raise ValueError("max_bytes and segment_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._lock_fd = self._take_directory_lock()
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # the segment being written: always self._segments[-1]
        self._retired_fds: list[int] = []  # rotated away, closed after their next fsync
        self._dir_dirty = False
        self._closed = False
        self._end_offset = 0  # logical stream offsets and lsns; set for real by _recover
        self._drained_offset = 0
        self._last_lsn = 0
        drained_lsn = self._read_checkpoint()
        self.recovery = self._recover(drained_lsn)
        self._drained_lsn = max(drained_lsn, 0)
        self._durable_lsn = self._last_lsn
        self._durable_offset = self._end_offset

    # -- state -------------------------------------------------------------------------------

    @property
    def depth_bytes(self) -> int:
        """Bytes appended and not yet drained into the store."""
        with self._lock:
            return self._end_offset - self._drained_offset

    @property
    def is_full(self) -> bool:
        """True once `depth_bytes` reached `max_bytes`: time to stop reading sockets."""
        return self.depth_bytes >= self.max_bytes

    @property
    def last_lsn(self) -> int:
        with self._lock:
            return self._last_lsn

    @property
    def durable_lsn(self) -> int:
        with self._lock:
            return self._durable_lsn

    @property
    def drained_lsn(self) -> int:
        with self._lock:
            return self._drained_lsn

    # -- writing -----------------------------------------------------------------------------

    def append(self, batch: PositionBatch, devices: DeviceIndex) -> int:
        """Writes `batch` (device column indexing `devices`) as one record; returns its lsn.

        Not durable until a `commit` returns an lsn at least this one. An empty batch writes
        nothing and returns the last lsn.
        """
        if len(batch) == 0:
            return self.last_lsn
        used, local = np.unique(batch.device, return_inverse=True)
        terminals = [devices.terminal(int(i)) for i in used]
        rebased = PositionBatch(**{**batch.columns(), "device": local.astype(np.int32)})
        payload = encode_payload(rebased, terminals)
        with self._lock:
            self._check_open()
            lsn = self._last_lsn + 1
            record = encode_record(lsn, payload)
            fd = self._writable_segment(lsn, len(record))
            _write_all(fd, record)
            segment = self._segments[-1]
            segment.size += len(record)
            segment.last_lsn = lsn
            self._last_lsn = lsn
            self._end_offset += len(record)
            return lsn

    def commit(self) -> int:
        """Fsyncs every record appended before the call; returns the lsn now durable.

        Blocking (one disk flush): call it from a worker thread, not the event loop.
        """
        with self._commit_lock:
            with self._lock:
                self._check_open()
                target_lsn, target_offset = self._last_lsn, self._end_offset
                if target_lsn == self._durable_lsn and not self._retired_fds:
                    return target_lsn
                retired, self._retired_fds = self._retired_fds, []
                current = self._fd
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            for fd in retired:
                os.fdatasync(fd)
            if current is not None:
                os.fdatasync(current)
            if dir_dirty:
                _fsync_directory(self.directory)
            for fd in retired:
                os.close(fd)
            with self._lock:
                self._durable_lsn = target_lsn
                self._durable_offset = target_offset
            return target_lsn

    # -- draining ----------------------------------------------------------------------------

    def pending(self, max_bytes: int = DEFAULT_PENDING_BYTES) -> list[JournalRecord]:
        """Durable records not yet drained, oldest first, about `max_bytes` of them (at least one).

        Reads from the drained point every time: after a failed store write the same records
        come back.
        """
        with self._lock:
            self._check_open()
            start, stop = self._drained_offset, self._durable_offset
            segments = [
                (s.path, s.base, s.size)
                for s in self._segments
                if s.base + s.size > start and s.base < stop
            ]
        records: list[JournalRecord] = []
        taken = 0
        for path, base, size in segments:
            offset = max(start, base) - base
            limit = min(stop, base + size) - base
            fd = os.open(path, os.O_RDONLY)
            try:
                while offset < limit and (not records or taken < max_bytes):
                    blob = _read_record_at(fd, offset, path)
                    frame = read_frame(blob, 0)
                    if frame is None:
                        raise JournalCorruptError(f"{path}: durable record at {offset} is damaged")
                    batch, terminals = decode_payload(payload_of(blob, frame))
                    offset += len(blob)
                    taken += len(blob)
                    records.append(JournalRecord(frame.lsn, batch, terminals, base + offset))
            finally:
                os.close(fd)
            if records and taken >= max_bytes:
                break
        return records

    def mark_drained(self, through: JournalRecord) -> None:
        """Records up to `through` are in the store: checkpoint, then delete drained segments."""
        with self._lock:
            self._check_open()
            if through.lsn <= self._drained_lsn:
                return
            if through.end_offset > self._durable_offset:
                raise JournalError(f"lsn {through.lsn} is not durable yet; cannot be drained")
            self._drained_lsn = through.lsn
            self._drained_offset = through.end_offset
        self._write_checkpoint(through.lsn)
        with self._lock:
            # Never the segment being written; the rest once their last byte is drained.
            doomed = [s for s in self._segments[:-1] if s.base + s.size <= self._drained_offset]
            self._segments = [s for s in self._segments if s not in doomed]
        for segment in doomed:
            segment.path.unlink(missing_ok=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Commits what was appended, then releases files and the directory lock."""
        if self._closed:
            return
        self.commit()
        with self._commit_lock, self._lock:
            self._closed = True
            for fd in [*self._retired_fds, *([self._fd] if self._fd is not None else [])]:
                os.close(fd)
            self._retired_fds, self._fd = [], None
            os.close(self._lock_fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError(f"{self.directory}: journal is closed")

    def _take_directory_lock(self) -> int:
        # POSIX record locks belong to the process: another process is refused, while this one
        # may reopen the directory (as a restart test does after abandoning an instance).
        path = self.directory / "LOCK"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise JournalLockedError(f"{path}: journal in use by another process") from exc
        return fd

    def _writable_segment(self, lsn: int, record_bytes: int) -> int:
        """The fd to append to, rotating to a new segment when this record would overflow."""
        current = self._segments[-1] if self._segments else None
        if self._fd is not None and current is not None:
            if current.size == 0 or current.size + record_bytes <= self.segment_bytes:
                return self._fd
            self._retired_fds.append(self._fd)
            self._fd = None
        path = self.directory / f"{lsn:020d}{SEGMENT_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._segments.append(_Segment(lsn, path, self._end_offset, 0, 0))
        self._dir_dirty = True
        return self._fd

    def _recover(self, drained_lsn: int) -> RecoveryReport:
        paths = sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"))
        truncations: list[Truncation] = []
        base = 0
        last_lsn = 0  # lsns only grow: a record that does not is garbage, like a bad checksum
        drained_offset = 0
        records = pending = 0
        for path in paths:
            data = path.read_bytes()
            offset, seg_last = 0, 0
            while (frame := read_frame(data, offset)) is not None and frame.lsn > last_lsn:
                offset, seg_last, last_lsn = frame.end, frame.lsn, frame.lsn
                records += 1
                if frame.lsn <= drained_lsn:
                    drained_offset = base + frame.end
                else:
                    pending += 1
            if offset < len(data):
                truncations.append(Truncation(path, offset, len(data) - offset))
                os.truncate(path, offset)
                _fsync_path(path)
            if offset == 0:
                path.unlink()
                continue
            self._segments.append(_Segment(int(path.stem), path, base, offset, seg_last))
            base += offset
        self._end_offset = base
        # Never reuse an lsn the checkpoint covers, even when its segments are gone.
        self._last_lsn = max(last_lsn, drained_lsn)
        self._drained_offset = drained_offset if pending else base
        # Segments wholly drained before the crash are deleted now; the last stays writable.
        for segment in list(self._segments):
            if segment.base + segment.size <= self._drained_offset:
                segment.path.unlink()
                self._segments.remove(segment)
        if self._segments:
            tail = self._segments[-1]
            self._fd = os.open(tail.path, os.O_WRONLY | os.O_APPEND)
        if truncations or len(paths) != len(self._segments):
            _fsync_directory(self.directory)
        return RecoveryReport(len(paths), records, pending, tuple(truncations))

    def _read_checkpoint(self) -> int:
        path = self.directory / "drained"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0
        if len(data) != _CHECKPOINT.size:
            return 0  # unreadable: replay everything, the store's writes are idempotent
        lsn, crc = _CHECKPOINT.unpack(data)
        return int(lsn) if zlib.crc32(data[:8]) == crc else 0

    def _write_checkpoint(self, lsn: int) -> None:
        packed = struct.pack("<Q", lsn)
        path = self.directory / "drained"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, packed + struct.pack("<I", zlib.crc32(packed)))
            os.fdatasync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_directory(self.directory)


def _read_record_at(fd: int, offset: int, path: Path) -> bytes:
    head = os.pread(fd, HEADER_BYTES, offset)
    if len(head) < HEADER_BYTES:
        raise JournalCorruptError(f"{path}: durable record at {offset} is cut short")
    length = HEADER.unpack(head)[1]
    body = os.pread(fd, length, offset + HEADER_BYTES)
    return head + body


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    _fsync_path(directory)
