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
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from ingest.commands import CommandOutcome, CommandQueue
from ingest.group_commit import GroupCommit
from ingest.journal import Journal
from ingest.journal_drain import DrainPolicy, DrainResult, drain_forever
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
)
from ingest.jt808.batch import REJECTED, decode_location_frames
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
from ingest.metrics import GatewayMetrics, JournalCollector, message_label
from ingest.registry import DeviceRegistry
from ingest.store_calls import StoreCalls
from positions import DeviceIndex, PositionBatch
from store import Device, Store

log = logging.getLogger("lienwatch.gateway")

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
                self.gateway.metrics.frames_in.labels(message_label(event.header.msg_id)).inc()
                self._on_message(event, now)
            elif isinstance(event, FrameRejected):
                self._on_rejected(event)
            elif isinstance(event, ReplyTimedOut):
                self._fail_reply(event.serial, TimeoutError("terminal did not answer"))
        if reports:
            self.gateway.group.queue_reports(self, reports, now)
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
                gateway.store.spawn(self._register_after_lookup(header))
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
                gateway.group.queue_batch(self, message, header.serial, now)
            else:
                self.conn.answer(header, Result.OK)
        elif isinstance(message, LocationReport):
            # Only a 0x0200 the payload path passed over reaches here (odd props byte).
            gateway.group.queue_batch(
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
        known = await self.gateway.store.call(lambda s: s.get_device(terminal))
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

    def send_command(self, message: Message, timeout_s: float) -> asyncio.Future[Message] | None:
        if self.closed or not self.authenticated:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()
        serial = self.conn.send(message, now_s=time.monotonic())
        self.replies[serial] = future
        loop.call_later(timeout_s, self._fail_reply, serial, TimeoutError("no answer"))
        self.flush()
        return future

    # ----------------------------------------------------------------- what the commit needs

    @property
    def terminal_raw(self) -> bytes:
        terminal = self.conn.terminal
        if isinstance(terminal, bytes):
            return terminal
        raise RuntimeError("an authenticated session always knows its terminal's raw id")

    @property
    def edition(self) -> Edition:
        return self.conn.edition

    @property
    def protocol_version(self) -> int:
        return self.conn.protocol_version

    def reserve_serials(self, count: int) -> int:
        return self.conn.reserve_serials(count)

    def write_frames(self, data: bytes) -> None:
        self._write(data, counted=True)

    def answer(self, serial: int, msg_id: int, result: int) -> None:
        self._write(self.conn.answer_serials([serial], msg_id, result))

    def bad_report(self) -> None:
        self._count_error()

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
    """The TCP server and its pipeline: sessions → group commit → acks; drain; commands."""

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
        JournalCollector(journal, self.metrics.registry)
        self.devices = DeviceIndex()
        self.sessions: dict[str, Session] = {}
        self.registry = DeviceRegistry([], auto_register=config.auto_register)
        self.reading_paused = False
        self.store = StoreCalls(store_factory)
        self.group = GroupCommit(
            journal,
            self.devices,
            self.metrics,
            set_paused=self._set_paused,
            on_positions=on_positions,
            commit_interval_s=config.commit_interval_s,
            max_pending_reports=config.max_pending_reports,
        )
        self.commands = CommandQueue(
            self.sessions, self.store, self.metrics, timeout_s=config.command_timeout_s
        )
        self._store_factory = store_factory
        self._all: set[Session] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._drain_stop = threading.Event()
        self._drain_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    @property
    def failed(self) -> asyncio.Event:
        """Set when the journal can no longer make anything durable: exit and recover."""
        return self.group.failed

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> tuple[str, int]:
        """Loads the device registry, starts drain, group commit and sweeper, then listens."""
        self._loop = asyncio.get_running_loop()
        devices = await self.store.call(lambda s: s.list_devices())
        self.registry = DeviceRegistry(devices, auto_register=self.config.auto_register)
        policy = DrainPolicy(interval_s=self.config.drain_interval_s)
        self._drain_thread = threading.Thread(
            target=drain_forever,
            args=(self.journal, self._store_factory, self._drain_stop),
            kwargs={"policy": policy, "on_drained": self._drained},
            name="journal-drain",
            daemon=True,
        )
        self._drain_thread.start()
        self.group.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="gateway-sweep")
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
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.group.stop()
        for session in list(self._all):
            session.close("gateway stopping")
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._drain_stop.set()
        if self._drain_thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._drain_thread.join, 10.0)
        await self.store.close()

    def _drained(self, result: DrainResult, took_s: float) -> None:
        """After each drain write (on the drain thread): metrics, and resuming reads."""
        self.metrics.store_write_latency.observe(took_s)
        self.metrics.positions_stored.inc(result.positions)
        if self._loop is not None and self.reading_paused:
            self._loop.call_soon_threadsafe(self.group.update_backpressure)

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
        self.store.spawn(self.commands.deliver_queued(session.terminal))

    def _set_paused(self, paused: bool) -> None:
        self.reading_paused = paused
        for session in list(self._all):
            if paused:
                session.pause()
            else:
                session.resume()

    def _persist_device(self, device: Device) -> None:
        self.store.spawn(self.store.call(lambda s: s.upsert_device(device)))

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
            self.group.update_backpressure()

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
        return await self.commands.send(
            terminal, message, timeout_s=timeout_s, queue_if_offline=queue_if_offline
        )


__all__ = ["CommandOutcome", "Edition", "Gateway", "GatewayConfig", "Session"]
