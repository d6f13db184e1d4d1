"""Group commit: reports of every connection → one journal record → one fsync → their acks.

A location report is acknowledged (0x8001) only once the journal holds it on disk. The flush
task takes every report pending across all connections, decodes them in one vectorized call and
appends them as one record; the commit task fsyncs (in a worker thread) everything appended
before it started and acknowledges those reports as soon as it returns. While a commit runs,
new reports gather for the next one.

Reading pauses (TCP backpressure, `set_paused`) while any of these holds: the journal is past
its bound (the store is behind), too many reports wait for their commit, the disk refused an
append, or an fsync failed. The journal's faults, each with one answer:
- `JournalFullError` (and any other failed append, which leaves nothing behind): the record's
  reports stay pending, unacknowledged; the append is retried every `retry_s` while reading is
  paused, so acknowledging resumes by itself once the drain (or anyone) frees space.
- `JournalSyncError`: final. Nothing is acknowledged any more, reading stays paused and
  `failed` is set: the process must exit and let recovery read what the disk holds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import operator
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ingest.acks import Acks, Reporter, send_acks
from ingest.journal import Journal, JournalError, JournalSyncError
from ingest.jt808.batch import LOCATION, REJECTED, decode_location_frames
from ingest.jt808.ids import MessageId, Result
from ingest.jt808.messages import BatchLocationReport
from ingest.metrics import GatewayMetrics
from ingest.rows import columns_to_batch, reports_to_batch
from positions import DeviceIndex, Flag, PositionBatch
from store import DeviceClock
from trajectory.clock import ClockState, DeviceClocks

log = logging.getLogger("lienwatch.gateway")

# Reports decoded, appended and acknowledged as one unit: large enough for the vectorized paths
# to pay off, small enough that one unit never holds the event loop for long.
FLUSH_ROWS = 4096

_DEVICE = operator.attrgetter("device")


@dataclass(slots=True)
class Pending:
    """Reports waiting for the next append, in arrival order."""

    payloads: list[bytes] = field(default_factory=list)
    links: list[Reporter] = field(default_factory=list)
    received_s: list[float] = field(default_factory=list)
    # (link, reports, serial, msg_id, received_s) of 0x0704 and odd 0x0200 frames
    batches: list[tuple[Reporter, BatchLocationReport, int, int, float]] = field(
        default_factory=list
    )
    batch_rows: int = 0

    def __len__(self) -> int:
        return len(self.payloads) + self.batch_rows


class GroupCommit:
    """Pending reports → journal records → fsync → acknowledgements; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        devices: DeviceIndex,
        metrics: GatewayMetrics,
        *,
        set_paused: Callable[[bool], None],
        on_positions: Callable[[PositionBatch, DeviceIndex], None] | None = None,
        commit_interval_s: float = 0.005,
        max_pending_reports: int = 200_000,
        retry_s: float = 0.2,
    ) -> None:
        self.journal = journal
        self.devices = devices
        self.metrics = metrics
        self.on_positions = on_positions
        self.commit_interval_s = commit_interval_s
        self.max_pending_reports = max_pending_reports
        self.retry_s = retry_s
        self.paused = False
        # Fix times corrected for device clocks before the journal: the store and the live
        # detector see the same times (trajectory.clock).
        self.clocks = DeviceClocks()
        self.failure: JournalSyncError | None = None
        self.failed = asyncio.Event()
        self._set_paused = set_paused
        self._pending = Pending()
        # A record the disk refused, appended again before anything newer.
        self._held: tuple[PositionBatch, Acks] | None = None
        self._append_error: str | None = None
        self._wakeup = asyncio.Event()
        self._woken = False  # `_wakeup` is set and the flush has not taken it yet
        self.taken = 0  # reports taken from the connections so far (`ingest.read_coalescing`)
        self._appended = asyncio.Event()
        # (journal lsn, batch, acks) appended and not yet known durable, in lsn order
        self._awaiting: collections.deque[tuple[int, PositionBatch, Acks]] = collections.deque()
        self._awaiting_rows = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal-commit")
        self._tasks: list[asyncio.Task[None]] = []

    # ----------------------------------------------------------------- intake

    def queue_reports(self, link: Reporter, payloads: list[bytes], now: float) -> None:
        """Undecoded 0x0200 frames (with their flags or without) of one authenticated
        connection, read together."""
        pending = self._pending
        pending.payloads.extend(payloads)
        pending.links.extend([link] * len(payloads))
        pending.received_s.extend([now] * len(payloads))
        self._wake()

    def queue_frame(self, link: Reporter, frame: bytes, now: float) -> None:
        """One whole flagged 0x0200 frame of an authenticated connection: the hot path, kept
        to three appends (the flush checks the backlog bound)."""
        pending = self._pending
        pending.payloads.append(frame)
        pending.links.append(link)
        pending.received_s.append(now)
        if not self._woken:  # `_wake`, inline: this runs once per report
            self._woken = True
            self._wakeup.set()

    def queue_batch(
        self,
        link: Reporter,
        batch: BatchLocationReport,
        serial: int,
        now: float,
        msg_id: int = MessageId.BATCH_LOCATION_REPORT,
    ) -> None:
        """A decoded 0x0704 (or a 0x0200 the payload path passed over, as a batch of one)."""
        self._pending.batches.append((link, batch, serial, int(msg_id), now))
        self._pending.batch_rows += len(batch.items)
        self._after_queue()

    def seed_clocks(self, clocks: Mapping[str, DeviceClock]) -> None:
        """Device clocks as the store last knew them (`DeviceClocks.seed`)."""
        if not clocks:
            return
        states = {s.label: s.value for s in ClockState}
        rows = list(clocks.items())
        self.clocks.seed(
            self.devices.indexes_of(t for t, _ in rows).astype(np.intp),
            np.array([states.get(c.state, -1) for _, c in rows], dtype=np.int8),
            np.array([c.offset_ms for _, c in rows], dtype=np.int64),
            np.array([c.since_ms for _, c in rows], dtype=np.int64),
        )

    @property
    def backlog(self) -> int:
        """Reports read and not yet acknowledged: pending, held or awaiting their commit."""
        held = len(self._held[0]) if self._held is not None else 0
        return len(self._pending) + held + self._awaiting_rows

    def _wake(self) -> None:
        if not self._woken:
            self._woken = True
            self._wakeup.set()

    def _after_queue(self) -> None:
        self._wake()
        if self.backlog >= self.max_pending_reports and not self.paused:
            self._pause(True)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="gateway-flush"),
            asyncio.create_task(self._commit_loop(), name="gateway-commit"),
        ]

    async def stop(self) -> None:
        """Stops the loops, then appends, commits and acknowledges everything read so far
        (unless the disk refuses: then those reports stay unacknowledged)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while self.failure is None and (len(self._pending) or self._held is not None):
            if not self._flush_append():
                log.error("stopping with %d reports the journal could not take", self.backlog)
                break
        while self.failure is None and self._awaiting:
            await self._commit_and_ack()
        self._pool.shutdown(wait=True)

    # ----------------------------------------------------------------- append

    async def _flush_loop(self) -> None:
        """Decodes and appends pending reports as they come; commits run beside it."""
        gather_s = self.commit_interval_s / 2
        while True:
            if self._held is None:
                await self._wakeup.wait()
            else:  # the disk refused the last append: try again in a while
                await asyncio.sleep(self.retry_s)
            self._wakeup.clear()
            self._woken = False
            if self.backlog >= self.max_pending_reports and not self.paused:
                self._pause(True)
            rows = len(self._pending)
            self.taken += rows
            try:
                self._flush_append()
            except Exception:  # keep the gateway alive; the reports stay unacknowledged
                log.exception("flush failed")
                await asyncio.sleep(0.1)
            # Let reports gather between two flushes (half a commit interval: every append
            # still precedes the next commit), unless this one left a backlog behind.
            await asyncio.sleep(0 if rows >= FLUSH_ROWS else gather_s)

    def _flush_append(self) -> bool:
        """Appends the held record, else the oldest pending reports; False when refused."""
        if self.failure is not None:
            return False
        if self._held is not None:
            batch, acks = self._held
        else:
            pending = self._take_pending(FLUSH_ROWS)
            if not len(pending):
                return True
            batch, acks = self._build_batch(pending)
        try:
            lsn = self.journal.append(batch, self.devices) if len(batch) else self.journal.last_lsn
        except JournalSyncError as exc:
            self._fail(exc)
            return False
        except JournalError as exc:
            self._held = (batch, acks)
            if self._append_error is None:
                log.error("journal append refused, holding %d reports: %s", len(batch), exc)
            self._append_error = str(exc)
            self.update_backpressure()
            return False
        if self._held is not None:
            log.warning("journal appends again; %d held reports appended", len(batch))
            self._held = None
            self._append_error = None
            self.update_backpressure()
            if len(self._pending):
                self._wake()
        self._awaiting.append((lsn, batch, acks))
        self._awaiting_rows += len(batch)
        self._appended.set()
        return True

    def _take_pending(self, rows: int) -> Pending:
        """At most about `rows` pending reports, oldest first: the event loop never blocks on
        one huge decode while sockets and commit completions wait."""
        pending = self._pending
        if len(pending.payloads) <= rows:
            self._pending = Pending()
            return pending
        taken = Pending(
            payloads=pending.payloads[:rows],
            links=pending.links[:rows],
            received_s=pending.received_s[:rows],
            batches=pending.batches,
            batch_rows=pending.batch_rows,
        )
        self._pending = Pending(
            payloads=pending.payloads[rows:],
            links=pending.links[rows:],
            received_s=pending.received_s[rows:],
        )
        self._wake()  # the rest goes in the next flush
        return taken

    def _build_batch(self, pending: Pending) -> tuple[PositionBatch, Acks]:
        """Decodes the pending reports into one batch and lists the acks owed."""
        acks = Acks()
        parts: list[PositionBatch] = []
        recv_ms = time.time_ns() // 1_000_000
        if pending.payloads:
            # Frames of the hot path keep their flags, payloads the session split do not.
            cols = decode_location_frames(pending.payloads, flagged=True)
            links = pending.links
            device = np.fromiter(map(_DEVICE, links), dtype=np.int32, count=len(links))
            good = cols.kind == LOCATION
            for i in np.flatnonzero(~good).tolist():
                link = links[i]
                code = cols.error_code(i)
                self.metrics.frames_rejected.labels(code.value if code else "unsupported").inc()
                if cols.kind[i] != REJECTED:  # sound but not decodable here: say unsupported
                    link.answer(int(cols.serial[i]), 0x0200, Result.UNSUPPORTED)
                link.bad_report()
            self.metrics.frames_in.labels("0x0200").inc(int(good.sum()))
            rows = np.flatnonzero(good)
            parts.append(columns_to_batch(cols, rows, device[rows], recv_ms, 0))
            acks.links = [links[i] for i in rows.tolist()]
            acks.answer_serial = cols.serial[rows]
            acks.received_s = np.asarray(pending.received_s, dtype=np.float64)[rows]
        for link, report, serial, msg_id, received in pending.batches:
            flags = 0 if report.kind < 0 else int(Flag.BACKFILL if report.backfill else Flag.BATCH)
            parts.append(reports_to_batch(report.items, link.device, recv_ms, flags))
            acks.single.append((link, serial, msg_id, received))
        return self.clocks.apply(PositionBatch.concat(parts)), acks

    # ----------------------------------------------------------------- commit

    async def _commit_loop(self) -> None:
        """Group commit: one fsync covers every record appended before it started; the
        reports of those records are acknowledged as soon as it returns."""
        loop = asyncio.get_running_loop()
        while self.failure is None:
            await self._appended.wait()
            started = loop.time()
            self._appended.clear()
            try:
                await self._commit_and_ack()
            except Exception:  # nothing is acknowledged; devices resend
                log.exception("journal commit failed")
                await asyncio.sleep(0.5)
            rest = self.commit_interval_s - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def _commit_and_ack(self) -> None:
        if not self._awaiting:
            return
        loop = asyncio.get_running_loop()
        try:
            durable = await loop.run_in_executor(self._pool, self.journal.commit)
        except JournalSyncError as exc:
            self._fail(exc)
            return
        acked = 0
        owed: list[Acks] = []
        while self._awaiting and self._awaiting[0][0] <= durable:
            _, batch, acks = self._awaiting.popleft()
            self._awaiting_rows -= len(batch)
            if len(batch) and self.on_positions is not None:
                self.on_positions(batch, self.devices)
            owed.append(acks)
            acked += len(batch)
        # One write per connection for everything this commit made durable.
        send_acks(Acks.merge(owed), time.monotonic(), self.metrics)
        self.metrics.positions_acked.inc(acked)
        self.update_backpressure()

    def _fail(self, exc: JournalSyncError) -> None:
        """An fsync failed: acknowledge nothing ever again and tell the process to exit."""
        if self.failure is not None:
            return
        self.failure = exc
        log.critical("journal fsync failed, acknowledging nothing more; exit to recover: %s", exc)
        self._awaiting.clear()
        self._awaiting_rows = 0
        self._pause(True)
        self.failed.set()

    # ----------------------------------------------------------------- backpressure

    def update_backpressure(self) -> None:
        """Pauses or resumes reading from what the journal and the backlog say now."""
        depth = self.journal.depth_bytes
        self.metrics.journal_depth.set(depth)
        backlog = self.backlog >= self.max_pending_reports
        blocked = self.failure is not None or self._held is not None
        if (depth >= self.journal.max_bytes or backlog or blocked) and not self.paused:
            log.warning(
                "pausing reads: journal depth %d bytes, %d reports waiting%s",
                depth,
                self.backlog,
                ", appends refused" if blocked else "",
            )
            self._pause(True)
        elif self.paused and depth < self.journal.max_bytes // 2 and not backlog and not blocked:
            log.info("resuming reads: journal depth %d bytes", depth)
            self._pause(False)

    def _pause(self, paused: bool) -> None:
        self.paused = paused
        self.metrics.paused.set(1 if paused else 0)
        self._set_paused(paused)
