"""The JT808 TCP gateway: asyncio moves bytes; the codec, journal and store do the rest.

A location report is acknowledged (0x8001) only once the journal holds it on disk. One flush
task takes every report pending across all connections, decodes them in one vectorized call,
appends them to the journal as one record and commits (fsync, in a worker thread): group commit.
While a commit runs, new reports gather for the next one. A drain thread moves committed
records into the store; when the store is down the journal grows, and past its bound every
socket stops being read (TCP backpressure) until the drain catches up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from ingest.journal import Journal
from ingest.journal_drain import drain_once
from ingest.jt808 import (
    Edition,
    FrameRejected,
    Header,
    Jt808Connection,
    Jt808ProtocolError,
    LocationFrameReceived,
    LocationReport,
    MessageReceived,
    ReplyTimedOut,
    Role,
    Status,
)
from ingest.jt808.batch import LOCATION, REJECTED, decode_location_frames
from ingest.jt808.batch_encode import encode_general_responses
from ingest.jt808.ids import MessageId, Result
from ingest.jt808.messages import (
    Authenticate,
    BatchLocationReport,
    Deregister,
    Heartbeat,
    LocationQueryReply,
    Message,
    ParametersReply,
    RawMessage,
    Register,
    RegisterResponse,
    TerminalGeneralResponse,
)
from ingest.metrics import GatewayMetrics
from ingest.registry import DeviceRegistry
from positions import DeviceIndex, Flag, PositionBatch
from store import CommandState, Device, Store, StoreError
from trajectory.clock import DeviceClocks

log = logging.getLogger("lienwatch.gateway")

# Reports decoded, appended and acknowledged as one unit: large enough for the vectorized paths
# to pay off, small enough that one unit never holds the event loop for long.
_FLUSH_ROWS = 4096

# Journal bytes not yet stored past which the drain stops pausing between writes.
_DRAIN_BACKLOG_BYTES = 8 * 1024 * 1024

# Messages that answer a platform command: they resolve the command's future.
_REPLIES = (TerminalGeneralResponse, LocationQueryReply, ParametersReply)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 6808
    auto_register: bool = False
    idle_timeout_s: float = 600.0
    # A connection not authenticated this long after it opened is closed (contracts §8), so an
    # unauthenticated peer cannot hold a socket for the whole idle timeout.
    handshake_timeout_s: float = 30.0
    # SO_REUSEPORT: several gateway processes on one host share the port (contracts §9).
    reuse_port: bool = False
    max_frame_bytes: int = 4096
    max_errors: int = 20
    # Reading pauses above this many reports waiting for their commit.
    max_pending_reports: int = 200_000
    command_timeout_s: float = 30.0
    # Time between two drains of the journal into the store when it is not behind.
    drain_interval_s: float = 0.5
    # Least time between the starts of two group commits: a longer window makes fewer, larger
    # acknowledgement writes (one per connection per commit) at the cost of latency.
    commit_interval_s: float = 0.005


@dataclass(slots=True)
class _Pending:
    """Reports waiting for the next commit, in arrival order."""

    payloads: list[bytes] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    received_s: list[float] = field(default_factory=list)
    # (session, reports, serial, msg_id, received_s) of 0x0704 and odd 0x0200 frames
    batches: list[tuple[Session, BatchLocationReport, int, int, float]] = field(
        default_factory=list
    )

    batch_rows: int = 0

    def __len__(self) -> int:
        return len(self.payloads) + self.batch_rows


@dataclass(slots=True)
class _Acks:
    """Acknowledgements owed once a commit returns: batch-decoded rows, then single frames."""

    sessions: list[Session] = field(default_factory=list)  # one per decoded 0x0200 row
    answer_serial: npt.NDArray[np.uint16] = field(default_factory=lambda: np.zeros(0, np.uint16))
    received_s: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    single: list[tuple[Session, int, int, float]] = field(default_factory=list)

    @staticmethod
    def merge(parts: list[_Acks]) -> _Acks:
        if len(parts) == 1:
            return parts[0]
        merged = _Acks()
        for part in parts:
            merged.sessions.extend(part.sessions)
            merged.single.extend(part.single)
        merged.answer_serial = np.concatenate(
            [p.answer_serial for p in parts] or [np.zeros(0, np.uint16)]
        )
        merged.received_s = np.concatenate([p.received_s for p in parts] or [np.zeros(0)])
        return merged


def _raw_terminal(session: Session) -> bytes:
    terminal = session.conn.terminal
    if isinstance(terminal, bytes):
        return terminal
    raise RuntimeError("an authenticated session always knows its terminal's raw id")


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What became of a platform command: answered, queued for an offline terminal, or not."""

    state: CommandState
    reply: Message | None = None
    command_id: int | None = None


class Session(asyncio.Protocol):
    """One TCP connection: feeds the codec, answers link messages, hands reports to the gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.conn = Jt808Connection(
            Role.PLATFORM,
            max_frame_bytes=gateway.config.max_frame_bytes,
            location_payloads=True,
        )
        self.transport: asyncio.Transport | None = None
        self.terminal: str | None = None
        self.device: int = -1  # index in the gateway's DeviceIndex once authenticated
        self.authenticated = False
        self.errors = 0
        self.last_rx_s = time.monotonic()
        # When the handshake clock started: the connection's opening, or its last deregistration.
        self.handshake_from_s = self.last_rx_s
        self.closed = False
        self.paused = False
        self.replies: dict[int, asyncio.Future[Message]] = {}
        self.peer = ""

    # ----------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but offer the same methods.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peer = str(transport.get_extra_info("peername"))
        self.gateway._session_opened(self)
        if self.gateway.reading_paused:
            self.pause()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for future in self.replies.values():
            if not future.done():
                future.set_exception(ConnectionError("terminal disconnected"))
        self.replies.clear()
        self.gateway._session_closed(self)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.last_rx_s = now
        try:
            self.conn.receive_data(data, now)
            events = self.conn.events()
        except Jt808ProtocolError as exc:
            self.gateway.metrics.frames_rejected.labels("oversized").inc()
            self.close(f"stream fault: {exc}")
            return
        reports: list[bytes] = []
        for event in events:
            if self.closed:
                return
            if type(event) is LocationFrameReceived:  # the hot path: most events are reports
                if self.authenticated:
                    reports.append(event.payload)
                else:
                    self._refuse_unauthenticated(event.payload)
            elif isinstance(event, MessageReceived):
                self.gateway.metrics.frames_in.labels(f"0x{event.header.msg_id:04x}").inc()
                self._on_message(event, now)
            elif isinstance(event, FrameRejected):
                self._on_rejected(event)
            elif isinstance(event, ReplyTimedOut):
                self._fail_reply(event.serial, TimeoutError("terminal did not answer"))
        if reports:
            self.gateway._queue_reports(self, reports, now)
        self.flush()
        broken = self.conn.broken
        if broken is not None:  # the events before the fault were handled; now close
            self.gateway.metrics.frames_rejected.labels("oversized").inc()
            self.close(f"stream fault: {broken}")

    # ----------------------------------------------------------------- messages

    def _on_message(self, event: MessageReceived, now: float) -> None:
        header, message = event.header, event.message
        gateway = self.gateway
        if isinstance(message, Register):
            if header.terminal in gateway.registry or gateway.registry.auto_register:
                self._register(header)
            else:  # provisioned since the gateway started? ask the store first
                gateway._spawn(self._register_after_lookup(header))
            return
        if isinstance(message, Authenticate):
            ok = gateway.registry.authenticate(header.terminal, message.auth_code)
            self.conn.answer(header, Result.OK if ok else Result.FAILED)
            if ok:
                self._authenticated(header.terminal)
            else:
                log.info("authentication refused terminal=%s peer=%s", header.terminal, self.peer)
                self._count_error()
            return
        if not self.authenticated or header.terminal != self.terminal:
            self.conn.answer(header, Result.FAILED)
            self._count_error()
            return
        if isinstance(message, Heartbeat):
            self.conn.answer(header, Result.OK)
        elif isinstance(message, BatchLocationReport):
            if message.items:
                gateway._queue_batch(self, message, header.serial, now)
            else:
                self.conn.answer(header, Result.OK)
        elif isinstance(message, LocationReport):
            # Only a 0x0200 the payload path passed over reaches here (odd props byte).
            gateway._queue_batch(
                self, BatchLocationReport(-1, (message,)), header.serial, now, MessageId(0x0200)
            )
        elif isinstance(message, Deregister):
            changed = gateway.registry.deregister(header.terminal)
            if changed is not None:
                gateway._persist_device(changed)
            self.conn.answer(header, Result.OK)
            self.authenticated = False
            self.handshake_from_s = now
        elif isinstance(message, _REPLIES):
            self._resolve_reply(message)
        elif isinstance(message, RawMessage):
            self.conn.answer(header, Result.UNSUPPORTED)
        else:
            self.conn.answer(header, Result.OK)

    def _register(self, header: Header) -> None:
        gateway = self.gateway
        outcome = gateway.registry.register(header.terminal, header.edition.value, _now_ms())
        if outcome.device is not None:
            gateway._persist_device(outcome.device)
        self.conn.send(RegisterResponse(header.serial, outcome.result, outcome.auth_code))
        self.flush()
        if outcome.result != 0:
            log.info("registration refused terminal=%s peer=%s", header.terminal, self.peer)

    async def _register_after_lookup(self, header: Header) -> None:
        terminal = header.terminal
        known = await self.gateway._in_store(lambda s: s.get_device(terminal))
        if known is not None and terminal not in self.gateway.registry:
            self.gateway.registry.put(known)
        if not self.closed:
            self._register(header)

    def _authenticated(self, terminal: str) -> None:
        gateway = self.gateway
        self.terminal = terminal
        self.authenticated = True
        self.device = gateway.devices.index_of(terminal)
        gateway._session_authenticated(self)

    def _refuse_unauthenticated(self, payload: bytes) -> None:
        # Decode just enough to answer: the batch decoder tells us the serial.
        cols = decode_location_frames([payload], flagged=False)
        if cols.kind[0] != REJECTED and self.conn.terminal is not None:
            self._write(self.conn.answer_serials([int(cols.serial[0])], 0x0200, Result.FAILED))
        self._count_error()

    def _on_rejected(self, event: FrameRejected) -> None:
        self.gateway.metrics.frames_rejected.labels(event.code.value).inc()
        if event.header is not None and self.conn.terminal is not None:
            self.conn.answer(event.header, Result.BAD_MESSAGE)
        self._count_error()

    def _count_error(self) -> None:
        self.errors += 1
        if self.errors >= self.gateway.config.max_errors:
            self.close(f"{self.errors} bad frames")

    # ----------------------------------------------------------------- commands

    def _resolve_reply(self, message: Message) -> None:
        serial = getattr(message, "answer_serial", None)
        future = self.replies.pop(serial, None) if serial is not None else None
        if future is not None and not future.done():
            future.set_result(message)

    def _fail_reply(self, serial: int, exc: Exception) -> None:
        future = self.replies.pop(serial, None)
        if future is not None and not future.done():
            future.set_exception(exc)

    def send_command(self, message: Message) -> asyncio.Future[Message]:
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        serial = self.conn.send(message, now_s=time.monotonic())
        self.replies[serial] = future
        self.flush()
        return future

    # ----------------------------------------------------------------- output

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self._write(data)

    def _write(self, data: bytes, *, counted: bool = False) -> None:
        """Writes frames; `counted`: the caller counts them in frames_out itself."""
        if self.transport is not None and not self.closed:
            self.transport.write(data)
            if not counted:
                self.gateway.metrics.frames_out.inc(data.count(b"\x7e") // 2)

    def pause(self) -> None:
        if self.transport is not None and not self.paused and not self.closed:
            self.transport.pause_reading()
            self.paused = True

    def resume(self) -> None:
        if self.transport is not None and self.paused and not self.closed:
            self.transport.resume_reading()
            self.paused = False

    def close(self, reason: str) -> None:
        if self.closed:
            return
        log.info("closing terminal=%s peer=%s reason=%s", self.terminal, self.peer, reason)
        self.closed = True
        if self.transport is not None:
            self.flush_quietly()
            self.transport.close()

    def flush_quietly(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Gateway:
    """The TCP server and its pipeline: sessions → pending reports → journal → acks; drain."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        journal: Journal,
        store_factory: Callable[[], Store],
        metrics: GatewayMetrics | None = None,
        on_positions: Callable[[PositionBatch, DeviceIndex], None] | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics or GatewayMetrics()
        self.devices = DeviceIndex()
        # Fix times corrected for device clocks before the journal: the store and the live
        # detector see the same times (trajectory.clock).
        self.clocks = DeviceClocks()
        self.sessions: dict[str, Session] = {}
        self.registry = DeviceRegistry([], auto_register=config.auto_register)
        self.reading_paused = False
        self.on_positions = on_positions
        self._store_factory = store_factory
        self._all: set[Session] = set()
        self._pending = _Pending()
        self._wakeup = asyncio.Event()
        self._appended = asyncio.Event()
        # (journal lsn, batch, acks) appended and not yet known durable, in lsn order
        self._awaiting_rows = 0
        self._awaiting_commit: collections.deque[tuple[int, PositionBatch, _Acks]] = (
            collections.deque()
        )
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._commit_pool = ThreadPoolExecutor(1, thread_name_prefix="journal-commit")
        self._store_pool = ThreadPoolExecutor(1, thread_name_prefix="gateway-store")
        self._store: Store | None = None
        self._drain_stop = threading.Event()
        self._drain_thread: threading.Thread | None = None
        self._drain_store_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> tuple[str, int]:
        """Loads the device registry, starts drain, flusher and sweeper, then listens."""
        self._loop = asyncio.get_running_loop()
        devices = await self._in_store(lambda s: s.list_devices())
        self.registry = DeviceRegistry(devices, auto_register=self.config.auto_register)
        self._drain_thread = threading.Thread(
            target=self._drain_loop, name="journal-drain", daemon=True
        )
        self._drain_thread.start()
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="gateway-flush"),
            asyncio.create_task(self._commit_loop(), name="gateway-commit"),
            asyncio.create_task(self._sweep_loop(), name="gateway-sweep"),
        ]
        self._server = await self._loop.create_server(
            lambda: Session(self),
            self.config.host,
            self.config.port,
            backlog=4096,
            reuse_port=self.config.reuse_port or None,
        )
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def stop(self) -> None:
        """Stops accepting, commits and acknowledges what was read, closes every connection."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            self._server.close()
        for session in list(self._all):
            session.pause()
        if self._tasks:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # One last flush: every report read so far is committed and acknowledged.
            while len(self._pending):
                self._flush_append()
            while self._awaiting_commit:
                await self._commit_and_ack()
        for session in list(self._all):
            session.close("gateway stopping")
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._drain_stop.set()
        if self._drain_thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._drain_thread.join, 10.0)
        self._commit_pool.shutdown(wait=True)
        if self._store is not None:
            store = self._store
            await asyncio.get_running_loop().run_in_executor(self._store_pool, store.close)
        self._store_pool.shutdown(wait=True)

    # ----------------------------------------------------------------- sessions

    def _session_opened(self, session: Session) -> None:
        self._all.add(session)
        self.metrics.connections.inc()
        self.metrics.connections_total.inc()

    def _session_closed(self, session: Session) -> None:
        self._all.discard(session)
        self.metrics.connections.dec()
        if session.terminal is not None and self.sessions.get(session.terminal) is session:
            del self.sessions[session.terminal]

    def _session_authenticated(self, session: Session) -> None:
        assert session.terminal is not None
        previous = self.sessions.get(session.terminal)
        if previous is not None and previous is not session:
            previous.close("replaced by a new connection of the same terminal")
        self.sessions[session.terminal] = session
        terminal = session.terminal
        self._spawn(self._deliver_queued(terminal))

    # ----------------------------------------------------------------- reports

    def _queue_reports(self, session: Session, payloads: list[bytes], now: float) -> None:
        pending = self._pending
        pending.payloads.extend(payloads)
        if len(payloads) == 1:
            pending.sessions.append(session)
            pending.received_s.append(now)
        else:
            pending.sessions.extend([session] * len(payloads))
            pending.received_s.extend([now] * len(payloads))
        self._after_queue()

    def _queue_batch(
        self,
        session: Session,
        batch: BatchLocationReport,
        serial: int,
        now: float,
        msg_id: int = MessageId.BATCH_LOCATION_REPORT,
    ) -> None:
        self._pending.batches.append((session, batch, serial, int(msg_id), now))
        self._pending.batch_rows += len(batch.items)
        self._after_queue()

    def _after_queue(self) -> None:
        self._wakeup.set()
        if self._backlog() >= self.config.max_pending_reports and not self.reading_paused:
            self._set_paused(True)

    def _backlog(self) -> int:
        """Reports read and not yet acknowledged: pending decode or awaiting their commit."""
        return len(self._pending) + self._awaiting_rows

    def _set_paused(self, paused: bool) -> None:
        self.reading_paused = paused
        self.metrics.paused.set(1 if paused else 0)
        for session in list(self._all):
            if paused:
                session.pause()
            else:
                session.resume()

    async def _flush_loop(self) -> None:
        """Decodes and appends pending reports as they come; commits run beside it."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            try:
                self._flush_append()
            except Exception:  # keep the gateway alive; the reports stay unacknowledged
                log.exception("flush failed")
                await asyncio.sleep(0.1)
            await asyncio.sleep(0)  # let sockets be read between two flushes

    def _flush_append(self) -> None:
        pending = self._take_pending(_FLUSH_ROWS)
        if not len(pending):
            return
        batch, acks = self._build_batch(pending)
        lsn = self.journal.append(batch, self.devices) if len(batch) else self.journal.last_lsn
        self._awaiting_commit.append((lsn, batch, acks))
        self._awaiting_rows += len(batch)
        self._appended.set()

    def _take_pending(self, rows: int) -> _Pending:
        """At most about `rows` pending reports, oldest first: the event loop never blocks on
        one huge decode while sockets and commit completions wait."""
        pending = self._pending
        if len(pending.payloads) <= rows:
            self._pending = _Pending()
            return pending
        taken = _Pending(
            payloads=pending.payloads[:rows],
            sessions=pending.sessions[:rows],
            received_s=pending.received_s[:rows],
            batches=pending.batches,
            batch_rows=pending.batch_rows,
        )
        self._pending = _Pending(
            payloads=pending.payloads[rows:],
            sessions=pending.sessions[rows:],
            received_s=pending.received_s[rows:],
        )
        self._wakeup.set()  # the rest goes in the next flush
        return taken

    async def _commit_loop(self) -> None:
        """Group commit: one fsync covers every record appended before it started; the
        reports of those records are acknowledged as soon as it returns."""
        loop = asyncio.get_running_loop()
        while True:
            await self._appended.wait()
            started = loop.time()
            self._appended.clear()
            try:
                await self._commit_and_ack()
            except Exception:  # the disk failed: nothing is acknowledged, devices resend
                log.exception("journal commit failed")
                await asyncio.sleep(0.5)
            rest = self.config.commit_interval_s - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def _commit_and_ack(self) -> None:
        if not self._awaiting_commit:
            return
        loop = asyncio.get_running_loop()
        durable = await loop.run_in_executor(self._commit_pool, self.journal.commit)
        acked = 0
        owed: list[_Acks] = []
        while self._awaiting_commit and self._awaiting_commit[0][0] <= durable:
            _, batch, acks = self._awaiting_commit.popleft()
            self._awaiting_rows -= len(batch)
            if len(batch) and self.on_positions is not None:
                self.on_positions(batch, self.devices)
            owed.append(acks)
            acked += len(batch)
        # One write per connection for everything this commit made durable.
        self._send_acks(_Acks.merge(owed))
        self.metrics.positions_acked.inc(acked)
        self._update_backpressure()

    def _build_batch(self, pending: _Pending) -> tuple[PositionBatch, _Acks]:
        """Decodes the pending reports into one batch and lists the acks owed."""
        acks = _Acks()
        parts: list[PositionBatch] = []
        recv_ms = _now_ms()
        if pending.payloads:
            cols = decode_location_frames(pending.payloads, flagged=False)
            sessions = pending.sessions
            device = np.fromiter((s.device for s in sessions), dtype=np.int32, count=len(sessions))
            good = cols.kind == LOCATION
            for i in np.flatnonzero(~good).tolist():
                session = sessions[i]
                code = cols.error_code(i)
                self.metrics.frames_rejected.labels(code.value if code else "unsupported").inc()
                if cols.kind[i] != REJECTED:  # sound but not decodable here: say unsupported
                    session._write(session.conn.answer_serials([int(cols.serial[i])], 0x0200, 3))
                session._count_error()
            self.metrics.frames_in.labels("0x0200").inc(int(good.sum()))
            rows = np.flatnonzero(good)
            parts.append(_columns_to_batch(cols, rows, device[rows], recv_ms, 0))
            acks.sessions = [sessions[i] for i in rows.tolist()]
            acks.answer_serial = cols.serial[rows]
            acks.received_s = np.asarray(pending.received_s, dtype=np.float64)[rows]
        for session, report, serial, msg_id, received in pending.batches:
            flags = 0 if report.kind < 0 else int(Flag.BACKFILL if report.backfill else Flag.BATCH)
            parts.append(_reports_to_batch(report.items, session.device, recv_ms, flags))
            acks.single.append((session, serial, msg_id, received))
        return self.clocks.apply(PositionBatch.concat(parts)), acks

    def _send_acks(self, acks: _Acks) -> None:
        """0x8001 for every committed report: one vectorized encode, one write per session."""
        now = time.monotonic()
        if acks.sessions:
            slot: dict[Session, int] = {}
            sid = np.fromiter(
                (slot.setdefault(s, len(slot)) for s in acks.sessions),
                dtype=np.int64,
                count=len(acks.sessions),
            )
            owners = list(slot)
            counts = np.bincount(sid, minlength=len(owners))
            first = np.array(
                [
                    o.conn.reserve_serials(int(c))
                    for o, c in zip(owners, counts.tolist(), strict=True)
                ],
                dtype=np.int64,
            )
            wide = np.array([o.conn.edition is Edition.V2019 for o in owners], dtype=bool)
            for v2019 in (False, True):
                rows = np.flatnonzero(wide[sid] == v2019)
                if not len(rows):
                    continue
                order = rows[np.argsort(sid[rows], kind="stable")]
                s_sorted = sid[order]
                starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
                run_len = np.diff(np.r_[starts, len(order)])
                within = np.arange(len(order)) - np.repeat(starts, run_len)
                group = [owners[int(i)] for i in s_sorted[starts].tolist()]
                ids = np.stack([np.frombuffer(_raw_terminal(o), dtype=np.uint8) for o in group])
                frames = encode_general_responses(
                    msg_id=0x8001,
                    terminals=ids[np.repeat(np.arange(len(group)), run_len)],
                    edition=Edition.V2019 if v2019 else Edition.V2013,
                    serial=(first[s_sorted] + within) & 0xFFFF,
                    answer_serial=acks.answer_serial[order],
                    answer_id=0x0200,
                    protocol_version=np.repeat(
                        np.array([o.conn.protocol_version for o in group]), run_len
                    ),
                )
                for owner, a, n in zip(group, starts.tolist(), run_len.tolist(), strict=True):
                    owner._write(b"".join(frames[a : a + n]), counted=True)
            self.metrics.frames_out.inc(len(acks.sessions))
            self.metrics.ack_latency.observe_many(now - acks.received_s)
        for session, serial, msg_id, received in acks.single:
            session._write(session.conn.answer_serials([serial], msg_id, Result.OK))
            self.metrics.ack_latency.observe(now - received)

    def _update_backpressure(self) -> None:
        depth = self.journal.depth_bytes
        self.metrics.journal_depth.set(depth)
        full = depth >= self.journal.max_bytes
        backlog = self._backlog() >= self.config.max_pending_reports
        if (full or backlog) and not self.reading_paused:
            log.warning(
                "pausing reads: journal depth %d bytes, %d pending", depth, len(self._pending)
            )
            self._set_paused(True)
        elif self.reading_paused and depth < self.journal.max_bytes // 2 and not backlog:
            log.info("resuming reads: journal depth %d bytes", depth)
            self._set_paused(False)

    # ----------------------------------------------------------------- drain (its own thread)

    def _drain_loop(self) -> None:
        store: Store | None = None
        wait_s = 0.2
        while not self._drain_stop.is_set():
            try:
                if store is None:
                    store = self._store_factory()
                started = time.perf_counter()
                result = drain_once(self.journal, store)
                took = time.perf_counter() - started
                self._drain_store_error = None
                wait_s = 0.2
                if result.positions:
                    self.metrics.store_write_latency.observe(took)
                    self.metrics.positions_stored.inc(result.positions)
                    if self._loop is not None and self.reading_paused:
                        self._loop.call_soon_threadsafe(self._update_backpressure)
                    if self.journal.depth_bytes >= _DRAIN_BACKLOG_BYTES:
                        continue  # behind: drain again at once
                # Each write also refreshes every device's latest position: fewer, larger
                # writes cost the database far less per row than many small ones.
                self._drain_stop.wait(max(0.0, self.config.drain_interval_s - took))
            except Exception as exc:  # the store is down: keep the journal, retry with backoff
                if self._drain_store_error != str(exc):
                    log.warning("store write failed, journal keeps the data: %s", exc)
                self._drain_store_error = str(exc)
                if store is not None:
                    with contextlib.suppress(Exception):
                        store.close()
                store = None
                self._drain_stop.wait(wait_s)
                wait_s = min(wait_s * 2, 5.0)
        # Last pass so a clean stop leaves nothing behind when the store is up.
        with contextlib.suppress(Exception):
            if store is None:
                store = self._store_factory()
            while drain_once(self.journal, store).records:
                pass
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    # ----------------------------------------------------------------- store thread

    async def _in_store(self, call: Callable[[Store], Any]) -> Any:
        def run() -> Any:
            if self._store is None:
                self._store = self._store_factory()
            return call(self._store)

        return await asyncio.get_running_loop().run_in_executor(self._store_pool, run)

    def _persist_device(self, device: Device) -> None:
        self._spawn(self._in_store(lambda s: s.upsert_device(device)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_failure)

    # ----------------------------------------------------------------- sweeper

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for session in list(self._all):
                if now - session.last_rx_s > self.config.idle_timeout_s:
                    session.close("idle")
                    continue
                if (
                    not session.authenticated
                    and now - session.handshake_from_s > self.config.handshake_timeout_s
                ):
                    session.close("handshake timeout")
                    continue
                if session.conn.awaiting_reply:
                    session.conn.check_timeouts(now)
                    for event in session.conn.events():
                        if isinstance(event, ReplyTimedOut):
                            session._fail_reply(event.serial, TimeoutError("no answer"))
                    session.flush()
            self._update_backpressure()

    # ----------------------------------------------------------------- commands down

    async def send_command(
        self,
        terminal: str,
        message: Message,
        *,
        timeout_s: float | None = None,
        queue_if_offline: bool = True,
    ) -> CommandOutcome:
        """Sends a platform message and awaits the terminal's answer; queued when offline."""
        timeout = timeout_s if timeout_s is not None else self.config.command_timeout_s
        session = self.sessions.get(terminal)
        if session is None or session.closed or not session.authenticated:
            if not queue_if_offline:
                self.metrics.commands.labels("offline").inc()
                return CommandOutcome(CommandState.FAILED)
            body = message.encode_body()
            msg_id = int(message.MSG_ID)
            try:
                command_id = await self._in_store(
                    lambda s: s.enqueue_command(terminal, msg_id, body, _now_ms())
                )
            except StoreError as exc:  # an unknown terminal, or the store is down
                log.warning("command for %s not queued: %s", terminal, exc)
                self.metrics.commands.labels("not_queued").inc()
                return CommandOutcome(CommandState.FAILED)
            self.metrics.commands.labels("queued").inc()
            return CommandOutcome(CommandState.QUEUED, command_id=int(command_id))
        try:
            reply = await asyncio.wait_for(session.send_command(message), timeout)
        except (TimeoutError, ConnectionError):
            self.metrics.commands.labels("timeout").inc()
            return CommandOutcome(CommandState.FAILED)
        ok = not isinstance(reply, TerminalGeneralResponse) or reply.result == 0
        self.metrics.commands.labels("acked" if ok else "refused").inc()
        return CommandOutcome(CommandState.ACKED if ok else CommandState.FAILED, reply)

    async def _deliver_queued(self, terminal: str) -> None:
        commands = await self._in_store(lambda s: s.commands_to_send(terminal, _now_ms()))
        for command in commands:
            session = self.sessions.get(terminal)
            if session is None or session.closed:
                return
            future = session.send_command(RawMessage(command.msg_id, command.body))
            await self._mark(command.id, CommandState.SENT)
            try:
                reply = await asyncio.wait_for(future, self.config.command_timeout_s)
            except (TimeoutError, ConnectionError):
                continue  # stays SENT; a later connection sees it as not answered
            ok = not isinstance(reply, TerminalGeneralResponse) or reply.result == 0
            await self._mark(command.id, CommandState.ACKED if ok else CommandState.FAILED)
            self.metrics.commands.labels("delivered" if ok else "refused").inc()

    async def _mark(self, command_id: int, state: CommandState) -> None:
        def mark(store: Store) -> None:
            store.mark_command(command_id, state, _now_ms())

        await self._in_store(mark)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())


def _columns_to_batch(
    cols: Any, rows: np.ndarray[Any, Any], device: np.ndarray[Any, Any], recv_ms: int, flags: int
) -> PositionBatch:
    status = cols.status[rows]
    lat_e6, lon_e6 = cols.lat_e6[rows], cols.lon_e6[rows]
    flag = np.full(len(rows), flags, dtype=np.uint16)
    flag[(status & int(Status.POSITIONED)) == 0] |= int(Flag.INVALID_FIX)
    flag[(lat_e6 == 0) & (lon_e6 == 0)] |= int(Flag.INVALID_FIX)
    flag[~cols.time_valid[rows]] |= int(Flag.BAD_TIME)
    lat = lat_e6 / 1e6
    lon = lon_e6 / 1e6
    return PositionBatch(
        device=device.astype(np.int32),
        time_ms=cols.time_ms[rows],
        recv_ms=np.full(len(rows), recv_ms, dtype=np.int64),
        device_time_ms=cols.time_ms[rows],
        lon=np.where(status & int(Status.WEST), -lon, lon),
        lat=np.where(status & int(Status.SOUTH), -lat, lat),
        speed_kmh=(cols.speed_dkmh[rows] / 10).astype(np.float32),
        course=cols.course[rows].astype(np.int16),
        altitude_m=cols.altitude_m[rows].astype(np.int32),
        alarm=cols.alarm[rows],
        status=status,
        flags=flag,
    )


def _reports_to_batch(
    reports: tuple[LocationReport, ...], device: int, recv_ms: int, flags: int
) -> PositionBatch:
    """Scalar-decoded reports (0x0704 items) as batch rows; their count is small."""
    n = len(reports)
    flag = np.full(n, flags, dtype=np.uint16)
    times = np.zeros(n, dtype=np.int64)
    for i, r in enumerate(reports):
        t = r.time_ms
        if t is None:
            flag[i] |= int(Flag.BAD_TIME)
        else:
            times[i] = t
        if not r.positioned or (r.lat_e6 == 0 and r.lon_e6 == 0):
            flag[i] |= int(Flag.INVALID_FIX)
    return PositionBatch(
        device=np.full(n, device, dtype=np.int32),
        time_ms=times,
        recv_ms=np.full(n, recv_ms, dtype=np.int64),
        device_time_ms=times,
        lon=np.array([r.lon for r in reports], dtype=np.float64),
        lat=np.array([r.lat for r in reports], dtype=np.float64),
        speed_kmh=np.array([r.speed_kmh for r in reports], dtype=np.float32),
        course=np.array([r.course for r in reports], dtype=np.int16),
        altitude_m=np.array([r.altitude_m for r in reports], dtype=np.int32),
        alarm=np.array([r.alarm for r in reports], dtype=np.uint32),
        status=np.array([r.status for r in reports], dtype=np.uint32),
        flags=flag,
    )


__all__ = ["CommandOutcome", "Edition", "Gateway", "GatewayConfig", "Session"]
