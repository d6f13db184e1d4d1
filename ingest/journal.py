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
  sockets (TCP backpressure). `append` never refuses for that bound, so nothing already read is
  dropped; the bound is overshot by at most what is in flight when reading pauses.

Faults, each with one meaning:
- A failed append (disk full: `JournalFullError`; any other write error: `JournalError`) leaves
  no byte of its record behind: the segment is cut back to its last whole record, or, when even
  that fails, abandoned for a fresh one. Nothing of it was acknowledged; the caller keeps the
  reports, pauses reading and tries again. `out_of_space` stays true until an append succeeds.
  Draining deletes a wholly drained segment even while it is the one being written (a new
  empty one takes its place), and the checkpoint is rewritten in place, so a full disk frees
  itself as the store catches up.
- A failed fsync is final (`JournalSyncError`): the kernel may already have dropped the dirty
  pages it could not write, so retrying could report data durable that is not. No lsn after the
  failure is ever durable; the process must exit and let recovery read what the disk holds.
- A damaged record (a bad sector, a flipped bit) costs that record alone: every record starts
  with a magic and is covered end to end by its CRC, so recovery and `pending` step to the next
  record that verifies (`journal_format.next_frame`). Lsns are consecutive, so the gap says how
  many records were lost. Each damage is logged and counted (`damaged_records`,
  `damaged_bytes`); only a torn tail (the end of a segment, where a crash leaves a record that
  was never acknowledged) is cut away.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
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
    next_frame,
    payload_of,
    read_frame,
)
from positions import DeviceIndex, PositionBatch

SEGMENT_SUFFIX = ".seg"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_PENDING_BYTES = 8 * 1024 * 1024
# A wholly drained segment still being written is replaced by an empty one past this size (or
# at once after a failed append for lack of space), so the drain gives the space back.
ROTATE_DRAINED_BYTES = 8 * 1024 * 1024
_CHECKPOINT = struct.Struct("<QI")
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

log = logging.getLogger(__name__)


class JournalError(RuntimeError):
    """The journal cannot be used as asked; the message names the file."""


class JournalLockedError(JournalError):
    """Another process has this journal directory open."""


class JournalCorruptError(JournalError):
    """A record that was durable no longer reads back: the disk changed under us."""


class JournalFullError(JournalError):
    """An append found no room on the disk; nothing of the record was kept."""


class JournalSyncError(JournalError):
    """An fsync failed: nothing appended since the last good commit will ever be durable."""


@dataclass(slots=True)
class _Segment:
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
        self._retired: list[_Segment] = []  # rotated away, closed after their next fsync
        self._dir_dirty = False
        self._closed = False
        self._sync_failure: OSError | None = None
        self.out_of_space = False
        self._checkpoint_fd: int | None = None
        # Logical [start, end) ranges known to hold no readable record, and their totals.
        self._damaged: dict[int, int] = {}
        self.damaged_records = 0
        self.damaged_bytes = 0
        self._end_offset = 0  # logical stream offsets and lsns; set for real by _recover
        self._drained_offset = 0
        self._last_lsn = 0
        drained_lsn = self._read_checkpoint()
        self.recovery = self._recover(drained_lsn)
        for damage in self.recovery.damaged:
            self._note_damage(damage, "recovery")
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
        nothing and returns the last lsn. Raises `JournalFullError` when the disk is full and
        `JournalError` on another write error, leaving no part of the record in the journal.
        """
        if len(batch) == 0:
            return self.last_lsn
        used, local = np.unique(batch.device, return_inverse=True)
        terminals = [devices.terminal(int(i)) for i in used]
        rebased = PositionBatch(**{**batch.columns(), "device": local.astype(np.int32)})
        payload = encode_payload(rebased, terminals)
        with self._lock:
            self._check_writable()
            lsn = self._last_lsn + 1
            record = encode_record(lsn, payload)
            try:
                fd = self._writable_segment(lsn, len(record))
            except OSError as exc:
                raise self._append_failed(exc) from exc
            segment = self._segments[-1]
            try:
                _write_all(fd, record)
            except OSError as exc:
                self._cut_back(segment)
                raise self._append_failed(exc) from exc
            self.out_of_space = False
            segment.size += len(record)
            segment.last_lsn = lsn
            self._last_lsn = lsn
            self._end_offset += len(record)
            return lsn

    def commit(self) -> int:
        """Fsyncs every record appended before the call; returns the lsn now durable.

        Blocking (one disk flush): call it from a worker thread, not the event loop. A failed
        fsync raises `JournalSyncError`, now and at every later call.
        """
        with self._commit_lock:
            with self._lock:
                self._check_writable()
                target_lsn, target_offset = self._last_lsn, self._end_offset
                if target_lsn == self._durable_lsn and not self._retired:
                    return target_lsn
                retired, self._retired = self._retired, []
                current = self._fd
                dir_dirty, self._dir_dirty = self._dir_dirty, False
            try:
                for segment in retired:
                    if segment.fd is not None:
                        os.fdatasync(segment.fd)
                if current is not None:
                    os.fdatasync(current)
                if dir_dirty:
                    _fsync_directory(self.directory)
            except OSError as exc:
                with self._lock:
                    self._sync_failure = exc
                log.critical("journal fsync failed in %s: %s", self.directory, exc)
                raise JournalSyncError(f"{self.directory}: fsync failed: {exc}") from exc
            for segment in retired:
                _close_segment(segment)
            with self._lock:
                self._durable_lsn = target_lsn
                self._durable_offset = target_offset
            return target_lsn

    # -- draining ----------------------------------------------------------------------------

    def pending(self, max_bytes: int = DEFAULT_PENDING_BYTES) -> list[JournalRecord]:
        """Durable records not yet drained, oldest first, about `max_bytes` of them (at least one).

        Reads from the drained point every time: after a failed store write the same records
        come back. A record that no longer verifies is stepped over (logged and counted once).
        """
        with self._lock:
            self._check_open()
            start, stop = self._drained_offset, self._durable_offset
            previous_lsn = self._drained_lsn
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
                    if (skip_to := self._damaged.get(base + offset)) is not None:
                        offset = skip_to - base
                        continue
                    blob = _read_record_at(fd, offset, limit)
                    frame = read_frame(blob, 0) if blob is not None else None
                    if blob is None or frame is None:
                        offset = self._step_over(fd, path, base, offset, limit, previous_lsn)
                        continue
                    batch, terminals = decode_payload(payload_of(blob, frame))
                    offset += frame.end
                    taken += frame.end
                    previous_lsn = frame.lsn
                    records.append(JournalRecord(frame.lsn, batch, terminals, base + offset))
            finally:
                os.close(fd)
            if records and taken >= max_bytes:
                break
        return records

    def mark_drained(self, through: JournalRecord) -> None:
        """Records up to `through` are in the store: checkpoint, then delete drained segments.

        The segment being written goes too once wholly drained and large (or the disk is full):
        an empty one takes its place, so the space comes back without waiting for a rotation.
        """
        with self._lock:
            self._check_open()
            if through.lsn <= self._drained_lsn:
                return
            if through.end_offset > self._durable_offset:
                raise JournalError(f"lsn {through.lsn} is not durable yet; cannot be drained")
            self._drained_lsn = through.lsn
            self._drained_offset = through.end_offset
        self._write_checkpoint(through.lsn)  # best effort: a stale one only replays stored rows
        with self._commit_lock, self._lock:  # no fsync runs on a file closed here
            drained = self._drained_offset
            doomed = [s for s in self._segments[:-1] if s.base + s.size <= drained]
            current = self._segments[-1] if self._segments else None
            if (
                current is not None
                and current.size
                and current.base + current.size <= drained
                and (current.size >= ROTATE_DRAINED_BYTES or self.out_of_space)
                and self._start_segment(self._last_lsn + 1)
            ):
                doomed.append(current)
            self._segments = [s for s in self._segments if s not in doomed]
            self._retired = [s for s in self._retired if s not in doomed]
            for segment in doomed:
                _close_segment(segment)  # wholly drained: its bytes need no fsync
        for segment in doomed:
            segment.path.unlink(missing_ok=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Commits what was appended, then releases files and the directory lock."""
        if self._closed:
            return
        # A failed fsync is already logged; nothing more becomes durable, recovery reads what
        # the disk holds.
        with contextlib.suppress(JournalSyncError):
            self.commit()
        with self._commit_lock, self._lock:
            self._closed = True
            for segment in [*self._retired, *self._segments]:
                _close_segment(segment)
            self._retired, self._fd = [], None
            if self._checkpoint_fd is not None:
                os.close(self._checkpoint_fd)
                self._checkpoint_fd = None
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

    def _check_writable(self) -> None:
        self._check_open()
        if self._sync_failure is not None:
            raise JournalSyncError(
                f"{self.directory}: an earlier fsync failed ({self._sync_failure}); restart to"
                " recover"
            )

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

    def _append_failed(self, exc: OSError) -> JournalError:
        if exc.errno in _SPACE_ERRNOS:
            self.out_of_space = True
            return JournalFullError(f"{self.directory}: no space left for the journal: {exc}")
        return JournalError(f"{self.directory}: journal write failed: {exc}")

    def _cut_back(self, segment: _Segment) -> None:
        """Removes the bytes of a failed append; when even that fails, abandons the segment."""
        assert segment.fd is not None
        try:
            os.ftruncate(segment.fd, segment.size)
        except OSError:
            # Its tail is torn: append no more there. The torn bytes lie past `size`, where
            # `pending` never reads and recovery cuts them.
            self._retired.append(segment)  # closed after the next commit's fsync
            self._fd = None  # the next append starts a new segment

    def _writable_segment(self, lsn: int, record_bytes: int) -> int:
        """The fd to append to, rotating to a new segment when this record would overflow."""
        current = self._segments[-1] if self._segments else None
        if self._fd is not None and current is not None:
            if current.size == 0 or current.size + record_bytes <= self.segment_bytes:
                return self._fd
            self._retired.append(current)
            self._fd = None
        path = self.directory / f"{lsn:020d}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._segments.append(_Segment(lsn, path, self._end_offset, 0, 0, fd))
        self._fd = fd
        self._dir_dirty = True
        return fd

    def _start_segment(self, lsn: int) -> bool:
        """Makes a new empty segment the one being written; False when it cannot be created.

        Its name records `lsn` as the next to be used, so lsns are never reused even when every
        older segment is gone and the checkpoint could not be written.
        """
        path = self.directory / f"{lsn:020d}{SEGMENT_SUFFIX}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except OSError:
            return False
        self._segments.append(_Segment(lsn, path, self._end_offset, 0, 0, fd))
        self._fd = fd
        self._dir_dirty = True
        return True

    def _step_over(
        self, fd: int, path: Path, base: int, offset: int, limit: int, previous_lsn: int
    ) -> int:
        """Where reading goes on after a damaged durable record at `offset`; notes the damage."""
        data = os.pread(fd, limit - offset, offset)
        frame = next_frame(data, 1, previous_lsn)
        end = offset + (frame.start if frame is not None else len(data))
        lost = (previous_lsn + 1, frame.lsn - 1) if frame is not None else None
        if lost is not None and lost[0] > lost[1]:
            lost = None
        with self._lock:
            self._damaged[base + offset] = base + end
        self._note_damage(Damage(path, offset, end - offset, lost), "read")
        return end

    def _note_damage(self, damage: Damage, when: str) -> None:
        self.damaged_records += damage.lost_records
        self.damaged_bytes += damage.dropped_bytes
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

    def _recover(self, drained_lsn: int) -> RecoveryReport:
        paths = sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}"))
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
                    damaged.append(
                        Damage(path, offset, dropped, lost if lost[0] <= lost[1] else None)
                    )
                    self._damaged[base + offset] = base + following.start
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
                _fsync_path(path)
            if offset == 0:
                path.unlink()
                continue
            self._segments.append(_Segment(int(path.stem), path, base, offset, seg_last))
            base += offset
        self._end_offset = base
        # Never reuse an lsn the checkpoint or a segment's name covers, even when records are gone.
        self._last_lsn = max(last_lsn, drained_lsn, name_floor)
        self._drained_offset = drained_offset if pending else base
        # Damage the store already holds behind the checkpoint was drained: nothing to report.
        damaged = [d for d in damaged if d.lost_lsns is None or d.lost_lsns[1] > drained_lsn]
        # Segments wholly drained before the crash are deleted now; the last stays writable.
        for segment in list(self._segments):
            if segment.base + segment.size <= self._drained_offset:
                segment.path.unlink()
                self._segments.remove(segment)
        if self._segments:
            tail = self._segments[-1]
            tail.fd = os.open(tail.path, os.O_WRONLY | os.O_APPEND)
            self._fd = tail.fd
        if truncations or len(paths) != len(self._segments):
            _fsync_directory(self.directory)
        return RecoveryReport(len(paths), records, pending, tuple(truncations), tuple(damaged))

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
        """Rewrites the 12-byte checkpoint in place: no new block is needed, so a full disk
        does not stop it; a torn write fails its CRC and only replays records already stored."""
        packed = struct.pack("<Q", lsn)
        try:
            if self._checkpoint_fd is None:
                path = self.directory / "drained"
                self._checkpoint_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                _fsync_directory(self.directory)
            os.pwrite(self._checkpoint_fd, packed + struct.pack("<I", zlib.crc32(packed)), 0)
            os.fdatasync(self._checkpoint_fd)
        except OSError as exc:
            log.warning("journal checkpoint not written (%s); it is retried at the next drain", exc)


def _read_record_at(fd: int, offset: int, limit: int) -> bytes | None:
    """The bytes of the record at `offset` as its header sizes it; None when it cannot fit."""
    head = os.pread(fd, HEADER_BYTES, offset)
    if len(head) < HEADER_BYTES:
        return None
    length = HEADER.unpack(head)[1]
    if offset + HEADER_BYTES + length > limit:
        return None
    return head + os.pread(fd, length, offset + HEADER_BYTES)


def _close_segment(segment: _Segment) -> None:
    if segment.fd is not None:
        os.close(segment.fd)
        segment.fd = None


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
