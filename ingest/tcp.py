"""The TCP shell: one asyncio protocol per connection around a `Link`.

All it does is move bytes and time: data received goes into the session with the time it came,
the session's events are drained, its bytes written, its one timer re-armed (ingest.link). A
connection over the gateway's caps is closed as soon as it is accepted, before any byte is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Protocol, cast

from ingest.jt808.link import LinkSession
from ingest.link import Link, LinkHost
from ingest.registry import peer_address


class TcpHost(LinkHost, Protocol):
    """What the shell needs beyond a link's host: admission and the reading state."""

    reading_paused: bool

    def new_session(self) -> LinkSession: ...

    def link_opened(self, link: Link, address: str | None) -> bool:
        """Admits the connection (False: over a cap, close it) and starts tracking it."""
        ...


class TcpLink(Link, asyncio.Protocol):
    """One TCP connection."""

    def __init__(self, host: TcpHost) -> None:
        super().__init__(host, host.new_session(), "")
        self.tcp_host = host
        self.address = ""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but offer the same methods.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = peer_address(peer)
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else self.peer
        if not self.tcp_host.link_opened(self, self.address):
            self.closed = True
            self.transport.abort()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tcp_host.reading_paused:
            self.pause()
        self.pump()  # arms the handshake deadline

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self.session.take_whole_report(data, now):  # one plain 0x0200: straight to the commit
            self.group.queue_frame(self, data, now)
        else:
            self.receive(data, now)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.close("peer closed")

    def transmit(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def write_frames(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:  # one call per ack: no detour
            self.transport.write(data)

    def close_transport(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def pause(self) -> None:
        if self.transport is not None and not self.paused and not self.closed:
            self.transport.pause_reading()
            self.paused = True

    def resume(self) -> None:
        if self.transport is not None and self.paused and not self.closed:
            self.transport.resume_reading()
            self.paused = False
