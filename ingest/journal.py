"""The local write-ahead journal: a position is durable here before its report is acknowledged.

A directory of segment files (`<first lsn>.seg`, records as in `journal_format`), a `drained`
checkpoint and a `LOCK` file (`journal_segments`). Threading, without asyncio:
- `append` writes one record with a plain `os.write` into the page cache, no fsync: cheap enough
  for the event loop thread. `commit` fsyncs everything appended so far and returns the lsn now
  durable; it blocks for the disk's flush, so the group commit (`group_commit`) runs it in a
  worker thread and then acknowledges the reports up to that lsn. One commit runs at a time;
  appends go on meanwhile.
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
- A damaged record costs that record alone, logged and counted (`damaged_records`,
  `damaged_bytes`): see `journal_segments`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from pathlib import Path
from types import TracebackType

import numpy as np

from ingest.journal_format import (
    HEADER_BYTES,
    JournalRecord,
    encode_payload,
    encode_record,
)
from ingest.journal_segments import (
    Checkpoint,
    Damage,
    JournalError,
    JournalFullError,
    JournalLockedError,
    JournalSyncError,
    Segment,
    close_segment,
    fsync_directory,
    lock_directory,
    log_damage,
    new_segment,
    read_segment,
    recover,
    write_all,
)

__all__ = ["Journal", "JournalError", "JournalFullError", "JournalLockedError", "JournalSyncError"]
from positions import DeviceIndex, PositionBatch

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_PENDING_BYTES = 8 * 1024 * 1024
# A wholly drained segment still being written is replaced by an empty one past this size (or
# at once after a failed append for lack of space), so the drain gives the space back.
ROTATE_DRAINED_BYTES = 8 * 1024 * 1024
_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

log = logging.getLogger(__name__)


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
        self._lock_fd = lock_directory(self.directory)
        self._segments: list[Segment] = []
        self._fd: int | None = None  # the segment being written: always self._segments[-1]
        self._retired: list[Segment] = []  # rotated away, closed after their next fsync
        self._dir_dirty = False
        self._closed = False
        self._sync_failure: OSError | None = None
        self.out_of_space = False
        self._checkpoint = Checkpoint(self.directory)
        # Logical [start, end) ranges known to hold no readable record, and their totals.
        self._damaged: dict[int, int] = {}
        self.damaged_records = 0
        self.damaged_bytes = 0
        self._end_offset = 0  # logical stream offsets and lsns; set for real by recover
        self._drained_offset = 0
        self._last_lsn = 0
        drained_lsn = self._checkpoint.read()
        found = recover(self.directory, drained_lsn)
        self._segments, self._damaged = found.segments, found.damaged
        self._end_offset, self._drained_offset = found.end_offset, found.drained_offset
        self._last_lsn = found.last_lsn
        self._fd = self._segments[-1].fd if self._segments else None
        self.recovery = found.report
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
                write_all(fd, record)
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
                    fsync_directory(self.directory)
            except OSError as exc:
                with self._lock:
                    self._sync_failure = exc
                log.critical("journal fsync failed in %s: %s", self.directory, exc)
                raise JournalSyncError(f"{self.directory}: fsync failed: {exc}") from exc
            for segment in retired:
                close_segment(segment)
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
            read = read_segment(
                path, base, offset, limit, self._damaged, previous_lsn, max_bytes - taken
            )
            records += read.records
            taken += read.taken
            previous_lsn = read.previous_lsn
            for damage, start_at, end_at in read.damaged:
                with self._lock:
                    self._damaged[start_at] = end_at
                self._note_damage(damage, "read")
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
                close_segment(segment)  # wholly drained: its bytes need no fsync
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
                close_segment(segment)
            self._retired, self._fd = [], None
            self._checkpoint.close()
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

    def _append_failed(self, exc: OSError) -> JournalError:
        if exc.errno in _SPACE_ERRNOS:
            self.out_of_space = True
            return JournalFullError(f"{self.directory}: no space left for the journal: {exc}")
        return JournalError(f"{self.directory}: journal write failed: {exc}")

    def _cut_back(self, segment: Segment) -> None:
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
        segment = new_segment(self.directory, lsn, self._end_offset)
        self._segments.append(segment)
        self._fd = segment.fd
        self._dir_dirty = True
        assert segment.fd is not None
        return segment.fd

    def _start_segment(self, lsn: int) -> bool:
        """Makes a new empty segment the one being written; False when it cannot be created.

        Its name records `lsn` as the next to be used, so lsns are never reused even when every
        older segment is gone and the checkpoint could not be written.
        """
        try:
            segment = new_segment(self.directory, lsn, self._end_offset)
        except OSError:
            return False
        self._segments.append(segment)
        self._fd = segment.fd
        self._dir_dirty = True
        return True

    def _note_damage(self, damage: Damage, when: str) -> None:
        self.damaged_records += damage.lost_records
        self.damaged_bytes += damage.dropped_bytes
        log_damage(damage, when)

    def _write_checkpoint(self, lsn: int) -> None:
        try:
            self._checkpoint.write(lsn)
        except OSError as exc:
            log.warning("journal checkpoint not written (%s); it is retried at the next drain", exc)
