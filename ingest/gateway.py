"""The JT808 gateway: links (TCP, MQTT) → group commit → journal → acks; drain; commands.

The parts are modules of their own: the link policy is a sans-IO session in the protocol
package (ingest.jt808.link), driven by the TCP shell (ingest.tcp) and the MQTT bridge through
ingest.link; group commit and acknowledgements in ingest.group_commit; the one drain loop in
ingest.journal_drain; the command queue in ingest.commands; admission caps in ingest.admission.
This class wires them and keeps what they share: the device registry, the terminal → link map,
and the decisions the sessions ask for (registration, authentication).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from alerts.model import Alert
from ingest.admission import Admission, AdmissionLimits
from ingest.commands import CommandOutcome, CommandQueue
from ingest.device_records import DeviceRecords
from ingest.group_commit import GroupCommit
from ingest.journal import Journal
from ingest.journal_drain import DrainPolicy, DrainResult, drain_forever
from ingest.jt808 import Edition
from ingest.jt808.link import LinkSession
from ingest.jt808.link_events import AuthenticationRequested, LoggedOut, RegistrationRequested
from ingest.jt808.messages import Message
from ingest.link import Link
from ingest.logins import Logins, now_ms
from ingest.metrics import GatewayMetrics, JournalCollector
from ingest.presence import PRESENCE_STALE_S, SessionPresence
from ingest.read_coalescing import ReadCoalescing
from ingest.registry import AUTH_CODE_KEY, DeviceRegistry
from ingest.store_calls import StoreCalls
from ingest.tcp import TcpLink
from positions import DeviceIndex, PositionBatch
from store import Store

log = logging.getLogger("lienwatch.gateway")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 6808
    auto_register: bool = False
    idle_timeout_s: float = 600.0
    # A connection not authenticated this long after it opened (or deregistered) is closed
    # (contracts §8), whatever it sends meanwhile.
    handshake_timeout_s: float = 30.0
    # SO_REUSEPORT: several gateway processes on one host share the port (contracts §9).
    reuse_port: bool = False
    max_frame_bytes: int = 4096
    max_errors: int = 20
    # Caps on open TCP connections, in total and per source address; 0 is no cap.
    max_connections: int = 0
    max_connections_per_address: int = 0
    # Reading pauses above this many reports waiting for their commit.
    max_pending_reports: int = 200_000
    command_timeout_s: float = 30.0
    # A sub-packaged message idle this long is asked for again (0x8003), then dropped.
    reassembly_timeout_s: float = 30.0
    # Time between two drains of the journal into the store when it is not behind.
    drain_interval_s: float = 0.5
    # Least time between the starts of two group commits: a longer window makes fewer, larger
    # acknowledgement writes (one per connection per commit) at the cost of latency.
    commit_interval_s: float = 0.005
    # Under load, sockets are read this often rather than per packet; 0: per packet always.
    read_coalesce_s: float = 0.0005


class Gateway:
    """Links → group commit → acks; drain; commands. See the module docstring."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        journal: Journal,
        store_factory: Callable[[], Store],
        metrics: GatewayMetrics | None = None,
        on_positions: Callable[[PositionBatch, DeviceIndex], None] | None = None,
        on_alerts: Callable[[list[Alert]], None] | None = None,
        on_reading_paused: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics or GatewayMetrics()
        JournalCollector(journal, self.metrics.registry)
        self.devices = DeviceIndex()
        self.sessions: dict[str, Link] = {}  # authenticated terminal -> its link
        self.registry = DeviceRegistry([], auto_register=config.auto_register)
        self.reading_paused = False
        self.on_alerts = on_alerts  # alerts the gateway raises itself (device_conflict)
        # Told when reading pauses and resumes: no tracker can be heard meanwhile.
        self.on_reading_paused = on_reading_paused
        # Why journal drains into the store fail, None while they succeed (for /healthz).
        self.store_error: str | None = None
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
        limits = AdmissionLimits(config.max_connections, config.max_connections_per_address)
        self.admission = Admission(limits, time.monotonic())
        self._store_factory = store_factory
        self._links: set[Link] = set()
        self._addresses: dict[Link, str] = {}
        self.records = DeviceRecords(self.store)  # device records, one store write at a time
        self.logins = Logins(self)  # registration and authentication decisions
        # This gateway's sessions in the store, for the other processes of a split deployment.
        self.presence: SessionPresence | None = None
        self._server: asyncio.Server | None = None
        self._watch: asyncio.Task[None] | None = None
        self._coalescing: asyncio.Task[None] | None = None
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
        """Loads the device registry, starts drain and group commit, then listens."""
        self._loop = asyncio.get_running_loop()
        devices = await self.store.call(lambda s: s.list_devices())
        key = await self.store.call(lambda s: s.platform_secret(AUTH_CODE_KEY))
        self.registry = DeviceRegistry(
            devices, auto_register=self.config.auto_register, code_key=bytes.fromhex(key)
        )
        terminals = [d.terminal for d in devices]
        clocks = await self.store.call(lambda s: s.device_clocks(terminals)) if terminals else {}
        self.group.seed_clocks(clocks)
        policy = DrainPolicy(interval_s=self.config.drain_interval_s)
        self._drain_thread = threading.Thread(
            target=drain_forever,
            args=(self.journal, self._store_factory, self._drain_stop),
            kwargs={
                "policy": policy,
                "on_drained": self._drained,
                "on_store_error": self._store_failing,
            },
            name="journal-drain",
            daemon=True,
        )
        self._drain_thread.start()
        self.group.start()
        if self.presence is not None:
            self.presence.start()
        self._watch = asyncio.create_task(self._watch_loop(), name="gateway-watch")
        if self.config.read_coalesce_s > 0:
            coalescing = ReadCoalescing(
                lambda: self.group.taken, interval_s=self.config.read_coalesce_s
            )
            self._coalescing = asyncio.create_task(coalescing.run(), name="gateway-read-batching")
        self._server = await self._loop.create_server(
            lambda: TcpLink(self),
            self.config.host,
            self.config.port,
            backlog=4096,
            reuse_port=self.config.reuse_port or None,
        )
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    @property
    def shares_sessions(self) -> bool:
        """Whether other gateways may hold this one's terminals (presence is recorded)."""
        return self.presence is not None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Runs `coro` in the background beside the store calls; a failure is logged."""
        self.store.spawn(coro)

    async def held_elsewhere(self, terminal: str) -> bool:
        """Whether another live gateway holds `terminal`'s session (`ingest.mqtt_adoption`)."""
        if self.presence is None:
            return False
        alive_ms = now_ms() - int(PRESENCE_STALE_S * 1000)
        found = await self.store.call(lambda s: s.session_gateways([terminal], alive_ms))
        return found.get(terminal) not in (None, self.presence.gateway_id)

    async def stop(self) -> None:
        """Stops accepting, commits and acknowledges what was read, closes every connection."""
        if self._stopped:
            return
        self._stopped = True
        self.records.stopped = True
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.pause()
        for task in (self._watch, self._coalescing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.group.stop()
        for link in list(self._links):
            link.close("gateway stopping")
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._drain_stop.set()
        if self._drain_thread is not None:
            # Bounded by the drain's last pass; a store call stuck past it is left behind.
            await asyncio.get_running_loop().run_in_executor(None, self._drain_thread.join, 2.0)
        if self.presence is not None:
            await self.presence.close()
        await self.store.close()

    def _store_failing(self, error: str | None) -> None:
        self.store_error = error  # one reference assignment: safe from the drain thread

    def _drained(self, result: DrainResult, took_s: float) -> None:
        """After each drain write (on the drain thread): metrics, and resuming reads."""
        self.metrics.store_write_latency.observe(took_s)
        self.metrics.positions_stored.inc(result.positions)
        if self._loop is not None and self.reading_paused:
            self._loop.call_soon_threadsafe(self.group.update_backpressure)

    async def _watch_loop(self) -> None:
        """Journal depth on the metrics, and reads resumed once it allows, every second."""
        while True:
            await asyncio.sleep(1.0)
            self.group.update_backpressure()

    # ----------------------------------------------------------------- links

    def new_session(self) -> LinkSession:
        config = self.config
        return LinkSession(
            time.monotonic(),
            handshake_timeout_s=config.handshake_timeout_s,
            idle_timeout_s=config.idle_timeout_s,
            max_errors=config.max_errors,
            max_frame_bytes=config.max_frame_bytes,
            reassembly_timeout_s=config.reassembly_timeout_s,
        )

    def link_opened(self, link: Link, address: str | None) -> bool:
        """Tracks a new link; one with an `address` (TCP) counts against the caps, and False
        says it is over one (close it at once)."""
        if address is not None:
            over = self.admission.admit(address)
            if over is not None:
                self.metrics.connections_refused.labels(over).inc()
                return False
            self._addresses[link] = address
        self._links.add(link)
        self.metrics.connections.inc()
        self.metrics.connections_total.inc()
        return True

    def link_closed(self, link: Link) -> None:
        if link not in self._links:
            return
        self._links.discard(link)
        address = self._addresses.pop(link, None)
        if address is not None:
            self.admission.release(address)
        self.metrics.connections.dec()
        held = link.holds
        if held is not None and self.sessions.get(held) is link:
            self._release(held)

    def link_authenticated(self, link: Link, terminal: str) -> None:
        link.device = self.devices.index_of(terminal)
        link.holds = terminal
        previous = self.sessions.get(terminal)
        self.sessions[terminal] = link
        if self.presence is not None:
            self.presence.held(terminal)
        if previous is not None and previous is not link:
            conflict = self.registry.takeover(
                terminal,
                old_peer=previous.peer,
                old_idle_s=time.monotonic() - previous.session.last_rx,
                new_peer=link.peer,
                now_ms=now_ms(),
            )
            if conflict is not None:
                log.warning("takeover storm terminal=%s peers=%s", terminal, conflict.details)
                if self.on_alerts is not None:
                    self.on_alerts([conflict])
            previous.close("replaced by a new connection of the same terminal")
        self.store.spawn(self.commands.deliver_queued(terminal))

    def link_logged_out(self, link: Link, event: LoggedOut) -> None:
        link.holds = None
        if self.sessions.get(event.terminal) is link:
            self._release(event.terminal)
        if event.deregistered:
            changed = self.registry.deregister(event.terminal)
            if changed is not None:
                self.records.save(changed)

    def _release(self, terminal: str) -> None:
        del self.sessions[terminal]
        if self.presence is not None:
            self.presence.released(terminal)

    def _set_paused(self, paused: bool) -> None:
        self.reading_paused = paused
        if self.on_reading_paused is not None:
            self.on_reading_paused(paused)
        for link in list(self._links):
            if paused:
                link.pause()
            else:
                link.resume()

    # ----------------------------------------------------------------- decisions

    def decide_registration(self, link: Link, request: RegistrationRequested) -> None:
        self.logins.decide_registration(link, request)

    def decide_authentication(self, link: Link, request: AuthenticationRequested) -> None:
        self.logins.decide_authentication(link, request)

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


__all__ = ["CommandOutcome", "Edition", "Gateway", "GatewayConfig"]
