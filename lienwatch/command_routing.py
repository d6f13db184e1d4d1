"""Commands from any process to the gateway holding the terminal's session.

A terminal held by this process's own gateway gets its command straight from it, answer
awaited (as in one process). Otherwise, on a shared database, the command is queued in the
store, whose commit notifies every gateway (`lienwatch_commands`); the one holding the session
claims it, sends it and keeps the answer with it. When the store says a live gateway holds the
session, this waits for the command to be claimed and answered; when none does it answers
`queued` at once, and the command waits for the terminal's next login wherever it lands.
On SQLite (one process) the local gateway queues it itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from api.stores import StoreAccess
from ingest.commands import CommandOutcome
from ingest.gateway import Gateway
from ingest.jt808.messages import Message
from ingest.presence import PRESENCE_STALE_S
from store import CommandState

# A held terminal's gateway claims a command within this long of its commit, or it is not
# coming (the session ended meanwhile): the answer is then `queued`.
CLAIM_WAIT_S = 3.0
_POLL_S = (0.02, 0.05, 0.1, 0.2)  # growing pauses between reads of the command's state


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def alive_since_ms() -> int:
    """Sessions of gateways seen since this time count as held."""
    return _now_ms() - int(PRESENCE_STALE_S * 1000)


@dataclass(slots=True)
class CommandRouter:
    """`send(terminal, message)` for the API and the loan watcher; see the module docstring."""

    stores: StoreAccess
    shared: bool  # a database other processes use too (PostgreSQL)
    gateway: Gateway | None = None  # this process's own, if it runs one
    gateway_loop: asyncio.AbstractEventLoop | None = None  # the loop the gateway runs on
    answer_timeout_s: float = 32.0  # the gateway's command timeout, and a margin

    async def send(self, terminal: str, message: Message) -> CommandOutcome:
        gateway = self.gateway
        if gateway is not None and (terminal in gateway.sessions or not self.shared):
            return await self._on_gateway_loop(gateway.send_command(terminal, message))
        msg_id, body = int(message.MSG_ID), message.encode_body()
        command_id = await self.stores.run(
            lambda s: s.enqueue_command(terminal, msg_id, body, _now_ms())
        )
        holders = await self.online([terminal])
        if not holders:
            return CommandOutcome(CommandState.QUEUED, command_id=command_id)
        return CommandOutcome(await self._wait(command_id), command_id=command_id)

    async def online(self, terminals: list[str]) -> set[str]:
        """Those of `terminals` held by this process's gateway or, on a shared database, by
        any live gateway."""
        held: set[str] = set()
        gateway = self.gateway
        if gateway is not None:
            sessions = gateway.sessions
            held = {t for t in terminals if t in sessions}
        if self.shared and len(held) < len(terminals):
            rest = [t for t in terminals if t not in held]
            since = alive_since_ms()
            held |= set(await self.stores.run(lambda s: s.session_gateways(rest, since)))
        return held

    async def _wait(self, command_id: int) -> CommandState:
        """The command's state once answered, or as it stands when waiting is over."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        pauses = iter(_POLL_S)
        pause = next(pauses)
        while True:
            await asyncio.sleep(pause)
            pause = next(pauses, pause)
            command = await self.stores.run(lambda s: s.get_command(command_id))
            if command is None:  # pragma: no cover - commands are never deleted
                return CommandState.FAILED
            waited = loop.time() - start
            if command.state is CommandState.QUEUED and waited >= CLAIM_WAIT_S:
                return command.state
            if command.state not in (CommandState.QUEUED, CommandState.SENT):
                return command.state
            if waited >= self.answer_timeout_s:
                return command.state

    async def _on_gateway_loop(self, call: Awaitable[CommandOutcome]) -> CommandOutcome:
        loop = self.gateway_loop
        if loop is None or loop is asyncio.get_running_loop():
            return await call
        assert asyncio.iscoroutine(call)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, loop))
