"""The one small storage interface both adapters (SQLite, PostgreSQL) implement with one meaning.

Positions cross it as `PositionBatch` columns whose device column indexes a list of terminal ids
given beside the batch: the adapters map terminal ids to their own device keys, so a caller's
dense `DeviceIndex` never leaks into the database and a journal record replays as it is.

Meanings both adapters keep:
- A position is identified by (terminal, fix time in ms): writing it again is a no-op, so
  journal replays and devices re-sending unacknowledged reports never duplicate rows.
- The latest position of a device is its newest fix by fix time among rows that pass
  `PositionBatch.valid()` (a flagged jump, bad or future time or invalid fix would otherwise pin
  the map to a wrong place); a late fix never replaces a newer one.
- Writing positions advances the device's `last_seen_ms` to the newest receive time.
- Positions get a store sequence number in commit order; `positions_since` pages through them
  with it. Commit order equals sequence order because one writer (the journal drain) writes.
- An adapter object is used by one thread at a time; open one per thread that needs it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from positions import PositionBatch


class StoreError(RuntimeError):
    """A storage operation failed; the message says which and why."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached now; retrying later may succeed, nothing was written."""


class StoreConfigError(StoreError):
    """The store is configured wrongly (an unusable URL): a usage error, not an outage."""


class SchemaError(StoreError):
    """The database schema is missing or older than this code: run `lienwatch migrate`."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Rows offered and rows actually new (the rest were already stored)."""

    offered: int
    inserted: int


@dataclass(frozen=True, slots=True)
class Device:
    """A terminal as the platform knows it. Times are epoch ms UTC, None when never."""

    terminal: str
    edition: int | None = None
    auth_code: str | None = None
    registered_ms: int | None = None
    last_seen_ms: int | None = None
    vehicle_id: str | None = None


@dataclass(frozen=True, slots=True)
class PositionPage:
    """A page of `positions_since`: `batch.device` indexes `terminals`; pass `cursor` back."""

    batch: PositionBatch
    terminals: list[str]
    cursor: int


class CommandState(enum.StrEnum):
    QUEUED = "queued"  # waiting for the terminal to be online
    SENT = "sent"  # written to the terminal, no response yet
    ACKED = "acked"  # the terminal's general response said success
    FAILED = "failed"  # the terminal refused it, or it could not be sent
    EXPIRED = "expired"  # not delivered before its deadline


@dataclass(frozen=True, slots=True)
class QueuedCommand:
    """A platform message kept for a terminal that may be offline: id and body as encoded."""

    id: int
    terminal: str
    msg_id: int
    body: bytes
    state: CommandState
    created_ms: int
    expires_ms: int | None
    attempts: int
    serial: int | None
    updated_ms: int


class Store(Protocol):
    """Persistence of positions, devices and the command queue."""

    # positions
    def write_positions(self, batch: PositionBatch, terminals: Sequence[str]) -> WriteResult:
        """Stores every row, ignoring rows already stored; one transaction."""
        ...

    def latest(self, terminals: Sequence[str]) -> PositionBatch:
        """Latest positions of those terminals that have one; device indexes `terminals`."""
        ...

    def track(
        self,
        terminal: str,
        from_ms: int,
        to_ms: int,
        *,
        max_points: int | None = None,
        interval_ms: int | None = None,
    ) -> PositionBatch:
        """Positions with from_ms <= fix time < to_ms in time order, thinned as `thin` does."""
        ...

    def positions_since(self, cursor: int, limit: int) -> PositionPage:
        """Up to `limit` positions stored after `cursor` (0: from the start), in store order."""
        ...

    # devices
    def upsert_device(self, device: Device) -> None:
        """Creates the device or replaces its fields (None keeps what is stored)."""
        ...

    def get_device(self, terminal: str) -> Device | None: ...

    def list_devices(self) -> list[Device]: ...

    def touch_devices(self, terminals: Sequence[str], seen_ms: int) -> None:
        """Records a report (heartbeat, any message) from these terminals at `seen_ms`."""
        ...

    # command queue
    def enqueue_command(
        self, terminal: str, msg_id: int, body: bytes, now_ms: int, expires_ms: int | None = None
    ) -> int:
        """Queues a message for the terminal; returns the command id."""
        ...

    def commands_to_send(self, terminal: str, now_ms: int) -> list[QueuedCommand]:
        """Queued, unexpired commands for the terminal, oldest first; expires stale ones."""
        ...

    def mark_command(
        self, command_id: int, state: CommandState, now_ms: int, serial: int | None = None
    ) -> None:
        """Moves a command to `state` (SENT counts an attempt and records the serial used)."""
        ...

    def get_command(self, command_id: int) -> QueuedCommand | None: ...

    def close(self) -> None: ...
