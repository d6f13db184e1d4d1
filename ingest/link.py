"""One terminal link as the gateway sees it: a `LinkSession` driven by a transport shell.

The session decides; this class carries its events to where they go (reports to the group
commit, registration and authentication to the gateway's registry, command answers to their
futures, counts to the metrics), writes what the session has to send, and keeps one timer armed
at the session's next deadline. The shells add only their transport: `ingest.tcp` (a socket)
and `ingest.mqtt_bridge` (a broker topic pair). Both hand the time in: receive, drain the
events, transmit, re-arm.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Protocol

from ingest.group_commit import GroupCommit
from ingest.jt808 import Edition
from ingest.jt808.link import LinkSession
from ingest.jt808.link_events import (
    Authenticated,
    AuthenticationRequested,
    BatchReceived,
    Closed,
    CommandAnswered,
    CommandFailed,
    FrameCounted,
    LinkEvent,
    LoggedOut,
    RegistrationRequested,
    ReportsReceived,
)
from ingest.jt808.messages import Message
from ingest.metrics import GatewayMetrics, message_label

log = logging.getLogger("lienwatch.gateway")


class LinkHost(Protocol):
    """What a link needs of the gateway around it."""

    metrics: GatewayMetrics
    group: GroupCommit

    def decide_registration(self, link: Link, request: RegistrationRequested) -> None:
        """Calls `link.registration_decided` (or `registration_deferred`), now or later."""
        ...

    def decide_authentication(self, link: Link, request: AuthenticationRequested) -> None:
        """Calls `link.authentication_decided`, now or later."""
        ...

    def link_authenticated(self, link: Link, terminal: str) -> None: ...

    def link_logged_out(self, link: Link, event: LoggedOut) -> None: ...

    def link_closed(self, link: Link) -> None: ...


class Link:
    """A session, its timer and its futures; subclasses supply the transport."""

    def __init__(self, host: LinkHost, session: LinkSession, peer: str) -> None:
        self.host = host
        self.group = host.group
        self.session = session
        self.peer = peer
        self.device = -1  # the terminal's index in the gateway's DeviceIndex once authenticated
        self.holds: str | None = None  # the terminal this link is the live session of
        self.closed = False
        self.paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = math.inf
        self._pumping = False
        self._replies: dict[int, asyncio.Future[Message]] = {}

    # ------------------------------------------------------------------ the transport's part

    def transmit(self, data: bytes) -> None:
        raise NotImplementedError

    def close_transport(self) -> None:
        raise NotImplementedError

    def pause(self) -> None:
        """Stops reading from this link (backpressure)."""

    def resume(self) -> None:
        """Reads again."""

    # ------------------------------------------------------------------ driving the session

    @property
    def terminal(self) -> str | None:
        return self.session.terminal

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from a stream, received at `now`."""
        self.session.receive_data(data, now)
        self.pump()

    def receive_frame(self, frame: bytes, now: float) -> None:
        """One whole frame (a transport that keeps message boundaries)."""
        self.session.receive_frame(frame, now)
        self.pump()

    def close(self, reason: str) -> None:
        self.session.close(reason)
        self.pump()

    def pump(self) -> None:
        """Handles every event the session has, transmits, re-arms the timer."""
        if self._pumping:  # a decision taken while handling an event: the outer loop goes on
            return
        self._pumping = True
        session = self.session
        try:
            while (event := session.next_event()) is not None:
                if type(event) is ReportsReceived:  # the hot path
                    self.group.queue_reports(self, event.payloads, event.received_s)
                else:
                    self._dispatch(event)
            data = session.data_to_send()
            if data:
                self._write(data)
            if session.timers_moved():
                self._arm()
        finally:
            self._pumping = False

    def _dispatch(self, event: LinkEvent) -> None:
        host = self.host
        if isinstance(event, FrameCounted):
            if event.rejected is None:
                host.metrics.frames_in.labels(message_label(event.msg_id)).inc()
            else:
                host.metrics.frames_rejected.labels(event.rejected).inc()
        elif isinstance(event, BatchReceived):
            host.group.queue_batch(self, event.report, event.serial, event.received_s, event.msg_id)
        elif isinstance(event, RegistrationRequested):
            host.decide_registration(self, event)
        elif isinstance(event, AuthenticationRequested):
            host.decide_authentication(self, event)
        elif isinstance(event, Authenticated):
            host.link_authenticated(self, event.terminal)
        elif isinstance(event, LoggedOut):
            host.link_logged_out(self, event)
        elif isinstance(event, CommandAnswered):
            future = self._replies.pop(event.serial, None)
            if future is not None and not future.done():
                future.set_result(event.reply)
        elif isinstance(event, CommandFailed):
            future = self._replies.pop(event.serial, None)
            if future is not None and not future.done():
                closed = event.reason == "closed"
                future.set_exception(
                    ConnectionError("terminal disconnected")
                    if closed
                    else TimeoutError("terminal did not answer")
                )
        elif isinstance(event, Closed):
            self._closed(event.reason)

    def _closed(self, reason: str) -> None:
        log.info(
            "closing terminal=%s peer=%s reason=%s", self.holds or self.terminal, self.peer, reason
        )
        data = self.session.data_to_send()  # a last answer (a refusal, say) still goes out
        if data:
            self._write(data)
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.close_transport()
        self.host.link_closed(self)

    # ------------------------------------------------------------------ the timer

    def _arm(self) -> None:
        deadline = self.session.next_deadline()
        if deadline is None or self.closed:
            return
        if self._timer is not None and self._armed_at <= deadline:
            return  # it fires first; `handle_timer` then re-arms at the real deadline
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, deadline - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)
        self._armed_at = deadline

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = math.inf
        self.session.handle_timer(time.monotonic())
        self.pump()

    # ------------------------------------------------------------------ decisions

    def registration_decided(self, result: int, auth_code: str) -> None:
        if self.session.registration_decided(result, auth_code):
            self.pump()

    def registration_deferred(self) -> None:
        if self.session.registration_deferred():
            self.pump()

    def authentication_decided(self, ok: bool) -> None:
        if self.session.authentication_decided(ok):
            self.pump()

    # ------------------------------------------------------------------ commands down

    def send_command(self, message: Message, timeout_s: float) -> asyncio.Future[Message] | None:
        """See `ingest.commands.CommandLink`."""
        if self.closed:
            return None
        serial = self.session.send_command(message, time.monotonic(), timeout_s)
        if serial is None:
            return None
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._replies[serial] = future
        self.pump()
        return future

    # ------------------------------------------------------------------ what the commit needs

    def reserve_acks(self, count: int) -> tuple[int, bool, int, bytes]:
        """See `ingest.acks.Reporter`."""
        conn = self.session.conn
        raw = conn.terminal
        return (
            conn.reserve_serials(count),
            conn.edition is Edition.V2019,
            conn.protocol_version,
            raw if isinstance(raw, bytes) else b"",
        )

    def write_frames(self, data: bytes) -> None:
        if not self.closed:
            self.transmit(data)

    def answer(self, serial: int, msg_id: int, result: int) -> None:
        if not self.closed:
            self.transmit(self.session.answer_now(serial, msg_id, result))
            self.host.metrics.frames_out.inc()

    def bad_report(self) -> None:
        self.session.report_refused()
        self.pump()

    def _write(self, data: bytes) -> None:
        if not self.closed:
            self.transmit(data)
            self.host.metrics.frames_out.inc(data.count(b"\x7e") // 2)
