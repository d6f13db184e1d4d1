"""What the routes need from the process, handed in by the composition root."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import APIRouter

from api.auth import Authenticator, Identity
from api.map_options import MapOptions
from api.stores import StoreAccess
from ingest.commands import CommandOutcome
from ingest.jt808.messages import Message
from loans import CaseAction, Loan
from pipeline.thresholds import RuleBook
from store import Device
from store.scoped import ScopedStore

T = TypeVar("T")

# `Gateway.send_command` fits: sends a platform message, awaits the answer or queues it.
CommandSender = Callable[[str, Message], Awaitable[CommandOutcome]]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class ApiContext:
    """The API's collaborators.

    - `stores`: thread-pooled store access (one store per worker thread).
    - `send_command`: delivers commands; None answers 503 to command requests.
    - `online(terminals)`: those of `terminals` with a live connection now (this process's
      gateway knows its own; in a split deployment the store knows which gateway holds each).
    - `device_changed(device)`: told after a device is provisioned or rebound, so the gateway's
      registry sees the new auth code and vehicle at once.
    - `device_reprovisioned(device)`: told after an admin re-provisioned replaced hardware
      (identity and auth code replaced), so the gateway forgets the old ones at once and drops
      the old hardware's live connection.
    - `loan_changed(loan, action)`: told after a loan changed through the API, with its log
      entry (the live side tightens or relaxes the car's monitoring when it enters or leaves
      overdue). Called on the event loop; it must only schedule its work.
    - `map_options`: the map page's tile layer, its datum and the boundary set.
    - `rules`: the deployment's thresholds, for backtests sent without rules of their own.
    - `extra_routers`: more routes (alerts), built with `auth`'s dependencies.
    - `close_stores`: the app closes `stores` when it shuts down.
    - `max_body_bytes`: the largest request body (413 above it, before it is read).
    - `webhook_allow_private`: units' webhook receivers may be private, loopback... addresses
      (`LIENWATCH_WEBHOOK_ALLOW_PRIVATE`); refused by default (`alerts.delivery.targets`).
    - `long_answer_share`: the share of one core the writing of long answers (tracks) keeps
      to (api.long_answers); below 1 where the API shares its process with a gateway.
    - `fixed_keys`: SHA-256 hashes of keys the configuration stores again at every start
      (`LIENWATCH_ADMIN_API_KEY`, the demo's key): deleting one through the API would not
      revoke it, so it is refused (409): change the setting instead.
    """

    stores: StoreAccess
    send_command: CommandSender | None = None
    online: Callable[[list[str]], Awaitable[set[str]]] | None = None
    device_changed: Callable[[Device], None] | None = None
    loan_changed: Callable[[Loan, CaseAction], None] | None = None
    device_reprovisioned: Callable[[Device], None] | None = None
    extra_routers: list[APIRouter] = field(default_factory=list)
    clock_ms: Callable[[], int] = wall_clock_ms
    max_track_points: int = 100_000
    max_body_bytes: int = 1024 * 1024
    long_answer_share: float = 1.0
    close_stores: bool = True
    fixed_keys: frozenset[str] = frozenset()
    webhook_allow_private: bool = False
    map_options: MapOptions = field(default_factory=MapOptions)
    # The deployment's thresholds (its RULES.toml): what a backtest without rules of its own
    # compares against; None is the rules' own defaults.
    rules: RuleBook | None = None
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(self.stores)

    async def scoped(self, who: Identity, call: Callable[[ScopedStore], T]) -> T:
        """Runs `call` on the store as `who` sees it: its subtree only, changes audited.
        Routes reach resources only this way."""
        return await self.stores.scoped(who.scope, who.name, call, self.clock_ms)
