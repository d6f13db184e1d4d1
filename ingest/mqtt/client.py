"""The asyncio shell around `ClientSession`: one TCP connection, kept up, on the event loop.

No thread: a read is parsed in one pass, its messages handed to `on_messages` as one batch, and
its PUBACKs written together with whatever that batch made the caller publish. Publishes made
later (acknowledgements after a journal commit, say) gather until the loop's next turn and go
out as one write. The connection is re-established after any loss (backoff 0.1 s to 2 s); the
session's unacknowledged publishes are sent again. Keepalive: a PINGREQ every half keepalive,
and a connection that read nothing for 1.5 keepalives is dropped and re-made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ingest.mqtt.codec import MqttProtocolError
from ingest.mqtt.session import ClientSession

log = logging.getLogger("lienwatch.mqtt")

# (topics, payloads) of one read's PUBLISHes, in order
MessageHandler = Callable[[list[bytes], list[bytes]], None]


class MqttClient(asyncio.Protocol):
    """Connects, subscribes, hands over what arrives and publishes what it is given."""

    def __init__(
        self,
        host: str,
        port: int,
        session: ClientSession,
        on_messages: MessageHandler,
        *,
        reconnect_max_s: float = 2.0,
    ) -> None:
        self.host, self.port = host, port
        self.session = session
        self.on_messages = on_messages
        self.reconnect_max_s = reconnect_max_s
        self.transport: asyncio.Transport | None = None
        self.connections = 0  # accepted CONNACKs so far
        self.paused = False
        self._ready = asyncio.Event()  # connected and subscribed
        self._lost = asyncio.Event()
        self._flush_scheduled = False
        self._last_read = 0.0
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self, timeout_s: float = 10.0) -> None:
        """Returns once connected and subscribed; raises OSError if that takes too long."""
        self.begin()
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            await self.close(graceful=False)
            raise OSError(f"MQTT broker {self.host}:{self.port} did not answer") from None

    def begin(self) -> None:
        """Starts connecting (and re-connecting) without waiting."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="mqtt-client")
            self._pinger = asyncio.create_task(self._keepalive(), name="mqtt-keepalive")

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    async def close(
        self, *, graceful: bool = True, leave: bool = False, timeout_s: float = 5.0
    ) -> None:
        """Stops reconnecting. `graceful`: first waits (up to `timeout_s`) for every publish
        to be acknowledged; `leave`: unsubscribes too (a persistent session then gets nothing
        routed to it while away, such as a share of a shared subscription)."""
        if graceful and self.transport is not None and self.session.connected:
            deadline = time.monotonic() + timeout_s
            self.flush()
            while (self.session.inflight or self.session.waiting) and time.monotonic() < deadline:
                if not self._up():
                    break
                await asyncio.sleep(0.01)
            if leave and self._up():
                self.leave()
                while not self.session.unsubscribed and time.monotonic() < deadline:
                    if not self._up():
                        break
                    await asyncio.sleep(0.01)
            if self._up():
                self.session.disconnect()
                self.flush()
        self._closing = True
        for task in (self._runner, self._pinger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.1
        while not self._closing:
            self._lost.clear()
            before = self.connections
            try:
                await loop.create_connection(lambda: self, self.host, self.port)
            except OSError as exc:
                log.debug("MQTT connect to %s:%d failed: %s", self.host, self.port, exc)
            else:
                await self._lost.wait()
            if self._stopping():
                return
            if self.session.refused is not None:
                log.warning("MQTT broker refused the connection (code %d)", self.session.refused)
            delay = 0.1 if self.connections > before else min(self.reconnect_max_s, delay * 2)
            await asyncio.sleep(delay)

    def _up(self) -> bool:
        return self.session.connected  # read afresh after an await (no narrowing)

    def _stopping(self) -> bool:
        return self._closing

    async def _keepalive(self) -> None:
        interval = max(0.5, self.session.keepalive_s / 2)
        while True:
            await asyncio.sleep(interval)
            if self.transport is None or not self.session.connected:
                continue
            if time.monotonic() - self._last_read > self.session.keepalive_s * 1.5:
                log.warning(
                    "MQTT broker silent for %.0f s; reconnecting", self.session.keepalive_s * 1.5
                )
                self.transport.abort()
                continue
            self.session.ping()
            self.flush()

    # ----------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._last_read = time.monotonic()
        self.session.connection_made()
        if self.paused:
            self.transport.pause_reading()  # type: ignore[union-attr]
        self._write()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ready.is_set() and not self._closing:
            log.warning("MQTT broker connection lost (%s); reconnecting", exc or "closed")
        self.transport = None
        self._ready.clear()
        self.session.connection_lost()
        self._lost.set()

    def data_received(self, data: bytes) -> None:
        self._last_read = time.monotonic()
        session = self.session
        try:
            incoming = session.receive(data)
        except MqttProtocolError as exc:
            log.warning("MQTT broker sent a bad packet (%s); reconnecting", exc)
            if self.transport is not None:
                self.transport.abort()
            return
        if incoming.topics:
            self.on_messages(incoming.topics, incoming.payloads)
        if incoming.control:
            if session.connected and session.subscribed and not self._ready.is_set():
                self.connections += 1
                self._ready.set()
            elif session.refused is not None and self.transport is not None:
                self.transport.close()
        self._write()

    # ----------------------------------------------------------------- sending

    def publish(self, topic: bytes, payload: bytes, qos: int = 1) -> None:
        """Queues one message; it goes out with the current pass's write, or the next turn's."""
        self.session.publish(topic, payload, qos)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def leave(self) -> None:
        """Unsubscribes from everything (for good: a reconnection does not subscribe again);
        reading goes on, so PUBACKs of what this client still publishes are taken."""
        self.session.unsubscribe()
        self._write()

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._write()

    def flush(self) -> None:
        self._write()

    def _write(self) -> None:
        data = self.session.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    # ----------------------------------------------------------------- backpressure

    def pause_reading(self) -> None:
        """Stops reading: the broker holds (or, past its queue bound, drops) what comes."""
        if not self.paused:
            self.paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            if self.transport is not None:
                self.transport.resume_reading()
