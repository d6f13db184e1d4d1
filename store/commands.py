"""The command queue (commands waiting for, sent to and answered by a terminal) and the command
log (who issued a command through the API). SQL written once for both databases
(`store.statements`, `store.dialect`); telling the gateways that a command is waiting
(`notify`) is the adapter's: only PostgreSQL has other processes to tell.
"""

from __future__ import annotations

from typing import Any, Protocol

from store.interface import CommandLog, CommandState, QueuedCommand, StoreError
from store.notices import COMMANDS_CHANNEL
from store.statements import StatementRunner


class _CommandRunner(StatementRunner, Protocol):
    def notify(self, channel: str, payload: str) -> None: ...


def _select(runner: StatementRunner) -> str:
    d = runner._dialect
    return (
        f"SELECT c.id, d.terminal, c.msg_id, c.body, c.state, {d.ms('c.created_ms')},"
        f" {d.ms('c.expires_ms')}, c.attempts, c.serial, {d.ms('c.updated_ms')}, c.reply"
        " FROM command_queue c JOIN devices d ON d.id = c.device_id"
    )


def _command(row: tuple[Any, ...]) -> QueuedCommand:
    cid, terminal, msg_id, body, state, created, expires, attempts, serial, updated, reply = row
    return QueuedCommand(
        id=int(cid),
        terminal=terminal,
        msg_id=int(msg_id),
        body=bytes(body),
        state=CommandState(state),
        created_ms=int(created or 0),
        expires_ms=None if expires is None else int(expires),
        attempts=int(attempts),
        serial=serial,
        updated_ms=int(updated or 0),
        reply=reply,
    )


def _insert(
    runner: StatementRunner, what: str, columns: str, values: str, params: tuple[Any, ...]
) -> int:
    """Inserts a command of the terminal (the first parameter); its id."""
    rows = runner._run(
        what,
        f"INSERT INTO command_queue (device_id, {columns})"
        f" SELECT id, {values} FROM devices WHERE terminal = ? RETURNING id",
        (*params[1:], params[0]),
    ).rows
    if not rows:
        raise StoreError(f"{what}: unknown terminal {params[0]}")
    return int(rows[0][0])


class CommandRecords:
    """Mixin of both adapters."""

    def enqueue_command(
        self: _CommandRunner,
        terminal: str,
        msg_id: int,
        body: bytes,
        now_ms: int,
        expires_ms: int | None = None,
    ) -> int:
        d = self._dialect
        with self._atomic("enqueue command"):  # the gateways hear of it once it is committed
            command_id = _insert(
                self,
                "enqueue command",
                f"msg_id, body, {d.col('created_ms')}, {d.col('expires_ms')},"
                f" {d.col('updated_ms')}",
                f"?, ?, {d.at()}, {d.at()}, {d.at()}",
                (terminal, msg_id, body, now_ms, expires_ms, now_ms),
            )
            self.notify(COMMANDS_CHANNEL, terminal)
        return command_id

    def record_command(
        self: StatementRunner,
        terminal: str,
        msg_id: int,
        body: bytes,
        state: CommandState,
        now_ms: int,
    ) -> int:
        d = self._dialect
        return _insert(
            self,
            "record command",
            f"msg_id, body, state, {d.col('created_ms')}, attempts, {d.col('updated_ms')}",
            f"?, ?, ?, {d.at()}, 1, {d.at()}",
            (terminal, msg_id, body, state.value, now_ms, now_ms),
        )

    def commands_to_send(self: StatementRunner, terminal: str, now_ms: int) -> list[QueuedCommand]:
        """The terminal's queued commands, oldest first, once those past their expiry are
        marked expired."""
        d = self._dialect
        with self._atomic("commands to send"):
            self._run(
                "expire commands",
                f"UPDATE command_queue SET state = 'expired', {d.col('updated_ms')} = {d.at()}"
                " WHERE device_id = (SELECT id FROM devices WHERE terminal = ?)"
                f" AND state = 'queued' AND {d.col('expires_ms')} <= {d.at()}",
                (now_ms, terminal, now_ms),
            )
            rows = self._run(
                "commands to send",
                f"{_select(self)} WHERE d.terminal = ? AND c.state = 'queued' ORDER BY c.id",
                (terminal,),
            ).rows
        return [_command(row) for row in rows]

    def mark_command(
        self: StatementRunner,
        command_id: int,
        state: CommandState,
        now_ms: int,
        serial: int | None = None,
        reply: str | None = None,
    ) -> None:
        d = self._dialect
        changed = self._run(
            "mark command",
            f"UPDATE command_queue SET state = ?, {d.col('updated_ms')} = {d.at()},"
            " attempts = attempts + ?, serial = coalesce(?, serial),"
            " reply = coalesce(?, reply) WHERE id = ?",
            (
                state.value,
                now_ms,
                1 if state is CommandState.SENT else 0,
                serial,
                reply,
                command_id,
            ),
        )
        if changed.rowcount != 1:
            raise StoreError(f"mark command: no command {command_id}")

    def claim_command(self: StatementRunner, command_id: int, now_ms: int) -> bool:
        d = self._dialect
        return (
            self._run(
                "claim command",
                "UPDATE command_queue SET state = 'sent', attempts = attempts + 1,"
                f" {d.col('updated_ms')} = {d.at()} WHERE id = ? AND state = 'queued'",
                (now_ms, command_id),
            ).rowcount
            == 1
        )

    def get_command(self: StatementRunner, command_id: int) -> QueuedCommand | None:
        rows = self._run("get command", f"{_select(self)} WHERE c.id = ?", (command_id,)).rows
        return _command(rows[0]) if rows else None

    def list_commands(self: StatementRunner, terminal: str, limit: int) -> list[QueuedCommand]:
        rows = self._run(
            "list commands",
            f"{_select(self)} WHERE d.terminal = ? ORDER BY c.id DESC LIMIT ?",
            (terminal, limit),
        ).rows
        return [_command(row) for row in rows]

    def log_command(self: StatementRunner, log: CommandLog) -> None:
        self._run(
            "log command",
            "INSERT INTO command_log (command_id, issued_by, request, reply, org_id)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (command_id) DO UPDATE SET"
            " issued_by = excluded.issued_by, request = excluded.request,"
            " reply = excluded.reply, org_id = excluded.org_id",
            (log.command_id, log.issued_by, log.request, log.reply, log.org),
        )

    def command_log(self: StatementRunner, command_id: int) -> CommandLog | None:
        rows = self._run(
            "read command log",
            "SELECT command_id, issued_by, request, reply, org_id FROM command_log"
            " WHERE command_id = ?",
            (command_id,),
        ).rows
        if not rows:
            return None
        command, issued_by, request, reply, org = rows[0]
        return CommandLog(int(command), issued_by, request, reply, int(org))
