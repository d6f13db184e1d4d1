"""Platform commands down to terminals: sent at once to a connected terminal and its answer
awaited, or stored in the command queue for an offline one and delivered, oldest first, when
it next authenticates (queued → sent → acked / failed).

In a split deployment a command is queued by whichever process received it and the gateway
holding the session is told (`wake`, on a database notice): each queued command is claimed in
the store before it is sent, so two deliveries (a notice and a login, or two gateways) never
send it twice, and the terminal's answer is kept with it for the process that asked.

The API and the loan watcher import `CommandOutcome` from here; the connection that carries a
command is anything offering `send_command` (a TCP or MQTT link), whose session times it out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ingest.jt808.jsonview import body_json
from ingest.jt808.messages import Message, RawMessage, TerminalGeneralResponse
from ingest.metrics import GatewayMetrics
from ingest.store_calls import StoreCalls
from store import CommandState, Store, StoreError

log = logging.getLogger("lienwatch.gateway")


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What became of a platform command: answered, queued for an offline terminal, or not."""

    state: CommandState
    reply: Message | None = None
    command_id: int | None = None
    # Why the command was neither sent nor queued (the queue refused it), else None.
    refused: str | None = None


class CommandLink(Protocol):
    """A connection that can carry a command and hand back its answer."""

    def send_command(self, message: Message, timeout_s: float) -> asyncio.Future[Message] | None:
        """Sends `message`; the future holds the terminal's answer, or raises TimeoutError
        (`timeout_s` passed) or ConnectionError (the link closed). None: not authenticated."""
        ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def reply_json(reply: Message | None) -> str | None:
    """A terminal's answer as the command log keeps it: message id and body fields as JSON."""
    if reply is None:
        return None
    return json.dumps({"msg_id": f"0x{reply.MSG_ID:04x}", **body_json(reply)}, ensure_ascii=False)


def _accepted(reply: Message) -> bool:
    return not isinstance(reply, TerminalGeneralResponse) or reply.result == 0


class CommandQueue:
    """Sends to online terminals, queues for offline ones, delivers the queue on login."""

    def __init__(
        self,
        links: Mapping[str, CommandLink],
        store: StoreCalls,
        metrics: GatewayMetrics,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self.links = links
        self.store = store
        self.metrics = metrics
        self.timeout_s = timeout_s
        # terminal -> whether another delivery was asked for while one runs
        self._delivering: dict[str, bool] = {}

    async def send(
        self,
        terminal: str,
        message: Message,
        *,
        timeout_s: float | None = None,
        queue_if_offline: bool = True,
    ) -> CommandOutcome:
        """Sends a platform message and awaits the terminal's answer; queued when offline."""
        link = self.links.get(terminal)
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        future = link.send_command(message, timeout) if link is not None else None
        if future is None:
            if not queue_if_offline:
                self.metrics.commands.labels("offline").inc()
                return CommandOutcome(CommandState.FAILED)
            return await self._enqueue(terminal, message)
        try:
            reply = await future
        except (TimeoutError, ConnectionError):
            self.metrics.commands.labels("timeout").inc()
            return CommandOutcome(CommandState.FAILED)
        ok = _accepted(reply)
        self.metrics.commands.labels("acked" if ok else "refused").inc()
        return CommandOutcome(CommandState.ACKED if ok else CommandState.FAILED, reply)

    async def _enqueue(self, terminal: str, message: Message) -> CommandOutcome:
        body = message.encode_body()
        msg_id = int(message.MSG_ID)
        try:
            command_id = await self.store.call(
                lambda s: s.enqueue_command(terminal, msg_id, body, _now_ms())
            )
        except StoreError as exc:  # an unknown terminal, or the store is down
            log.warning("command for %s not queued: %s", terminal, exc)
            self.metrics.commands.labels("not_queued").inc()
            return CommandOutcome(CommandState.FAILED, refused=f"not queued: {exc}")
        self.metrics.commands.labels("queued").inc()
        return CommandOutcome(CommandState.QUEUED, command_id=int(command_id))

    def wake(self, terminal: str) -> None:
        """A command was queued for `terminal` (by any process): delivered now when this
        gateway holds its session, else left for the gateway that does."""
        if terminal in self.links:
            self.store.spawn(self.deliver_queued(terminal))

    async def deliver_queued(self, terminal: str) -> None:
        """Sends the terminal's queued commands, oldest first, each once answered or timed out.
        One delivery per terminal at a time: one asked for meanwhile runs again after it."""
        if terminal in self._delivering:
            self._delivering[terminal] = True
            return
        self._delivering[terminal] = False
        try:
            again = True
            while again:
                self._delivering[terminal] = False
                await self._deliver(terminal)
                again = self._delivering[terminal]
        finally:
            del self._delivering[terminal]

    async def _deliver(self, terminal: str) -> None:
        commands = await self.store.call(lambda s: s.commands_to_send(terminal, _now_ms()))
        for command in commands:
            link = self.links.get(terminal)
            if link is None:
                return
            if not await self._claim(command.id):
                continue  # another delivery took it
            message = RawMessage(command.msg_id, command.body)
            future = link.send_command(message, self.timeout_s)
            if future is None:  # the session ended meanwhile: back in the queue
                await self._mark(command.id, CommandState.QUEUED)
                return
            try:
                reply = await future
            except (TimeoutError, ConnectionError):
                continue  # stays SENT; a later connection sees it as not answered
            ok = _accepted(reply)
            state = CommandState.ACKED if ok else CommandState.FAILED
            await self._mark(command.id, state, reply_json(reply))
            self.metrics.commands.labels("delivered" if ok else "refused").inc()

    async def _claim(self, command_id: int) -> bool:
        def claim(store: Store) -> bool:
            return store.claim_command(command_id, _now_ms())

        return await self.store.call(claim)

    async def _mark(self, command_id: int, state: CommandState, reply: str | None = None) -> None:
        def mark(store: Store) -> None:
            store.mark_command(command_id, state, _now_ms(), reply=reply)

        await self.store.call(mark)
