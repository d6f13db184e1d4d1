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
- Writing positions advances the device's `last_seen_ms` to the newest receive time, and
  records its clock state as of its latest row (`device_clocks`; `trajectory.clock_rows`).
- A fix dated ahead of a newer row's receive time never stays the latest position.
- Positions get a store sequence number in commit order; `positions_since` pages through them
  with it. Commit order equals sequence order because one writer (the journal drain) writes.
- An adapter object is used by one thread at a time; open one per thread that needs it.

Each method is written once, in its aggregate's module (`store.devices`, `store.commands`,
`store.alert_records`, ...), for both databases; the adapters add only the position paths and
connection handling (docs/architecture.md, "The store's layout").
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np
import numpy.typing as npt

from alerts.lifecycle import AlertState, StoredAlert
from alerts.model import Alert
from alerts.outbox import AlertsAdded, WebhookDelivery
from loans import Bucket, CaseAction, Loan, LoanState, Stage
from organizations import ROOT_ID, Scope, Unit, UnitKind
from positions import PositionBatch
from store.backtest_jobs import BacktestRecord
from store.detector_partitions import Checkpoint, DetectorMember
from store.idempotency import KeptResponse
from store.orgs import Caller, UnitPaths
from store.statements import StatementRunner


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
    """A terminal as the platform knows it. Times are epoch ms UTC, None when never.

    `maker_id`, `model` and `terminal_id` (the hardware's own id in the 0x0100 body, not the
    phone number `terminal`) and `imei` (a 2019 tracker's 0x0102) are its identity (contracts
    section 8): None until recorded, then kept until a re-provisioning replaces them."""

    terminal: str
    edition: int | None = None
    auth_code: str | None = None
    registered_ms: int | None = None
    last_seen_ms: int | None = None
    vehicle_id: str | None = None
    maker_id: str | None = None
    model: str | None = None
    terminal_id: str | None = None
    imei: str | None = None
    org: int = ROOT_ID  # the owning unit


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """A device's clock as of its latest stored report (trajectory.clock): `state` a
    `ClockState` label, `offset_ms` the learned correction (receive - device time when the
    clock is unusable), `since_ms` the receive time since which the state holds."""

    state: str
    offset_ms: int
    since_ms: int
    seen_ms: int


@dataclass(frozen=True, slots=True)
class PositionPage:
    """A page of `positions_since`: `batch.device` indexes `terminals`; pass `cursor` back."""

    batch: PositionBatch
    terminals: list[str]
    cursor: int
    # Each row's store sequence number (`positions_since` fills it): a reader that keeps
    # several cursors over one page (detector partitions) skips the rows a cursor has passed.
    seq: npt.NDArray[np.int64] | None = None


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
    reply: str | None = None  # the terminal's answer as JSON, once a gateway delivered it


class AlertNotFoundError(StoreError):
    """No stored alert has that id."""


# -- HTTP API records: keys, fences, command log ----------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: never the key itself, only its SHA-256 (hex) and a short prefix
    that tells keys apart in listings."""

    name: str
    role: str  # admin, officer or viewer
    key_hash: str
    prefix: str
    created_ms: int
    org: int = ROOT_ID  # the unit whose subtree the key sees


@dataclass(frozen=True, slots=True)
class FenceFeature:
    """A fence to store: its id, kind and GeoJSON Feature text (WGS-84, validated upstream)."""

    id: str
    kind: str
    feature: str
    org: int = ROOT_ID


@dataclass(frozen=True, slots=True)
class StoredFence:
    """A stored fence; `version` is the fence-set version whose change wrote it."""

    id: str
    kind: str
    feature: str
    updated_ms: int
    version: int
    org: int = ROOT_ID


class SpotCandidateError(StoreError):
    """A candidate spot cannot be decided: `missing` (no such id) or `decided` already."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SpotCandidate:
    """A place `gathering` proposed as a risk spot, with its evidence (the visits: vehicle,
    device, borrower, arrival), and what an admin decided: `proposed`, `accepted` (then
    `fence_id` is the hotspot it became) or `dismissed`. It belongs to `org`: a tenant when
    every car of its evidence is in that tenant's subtree, else the platform."""

    id: int
    alert_id: int | None
    lon: float
    lat: float
    radius_m: float
    borrowers: int
    evidence: list[dict[str, object]]
    proposed_ms: int
    created_ms: int
    status: str
    fence_id: str | None = None
    decided_ms: int | None = None
    decided_by: str | None = None
    note: str | None = None
    org: int = ROOT_ID  # the tenant whose subtree holds every car of the evidence, else the root


@dataclass(frozen=True, slots=True)
class CommandLog:
    """Who issued a command through the API, the request and the terminal's answer (JSON)."""

    command_id: int
    issued_by: str
    request: str
    reply: str | None = None
    org: int = ROOT_ID  # the command's unit: its device's when issued


# -- loans and their case log ------------------------------------------------------------------


class LoanNotFoundError(StoreError):
    """No loan has that loan number."""


class LoanExistsError(StoreError):
    """A loan with that loan number is already stored."""


@dataclass(frozen=True, slots=True)
class LoanFilter:
    """`find_loans` filters; each one given must match. `bucket` needs `today` (the day the
    days past due are counted on) and matches only loans that still have days past due."""

    state: LoanState | None = None
    bucket: Bucket | None = None
    today: date | None = None
    stage: Stage | None = None
    vehicle_id: str | None = None
    branch: str | None = None
    scope: Scope | None = None  # only loans of this subtree (None: every unit)


# The pure change `update_loan` applies under the row's lock (a `loans.changes` function).
LoanChange = Callable[[Loan], tuple[Loan, CaseAction]]


class Store(StatementRunner, Protocol):
    """Persistence of positions, devices, the command queue, alerts and the webhook outbox.

    Methods are platform-wide (the engine and the gateway see every unit); the API reaches
    resources only through `store.scoped.ScopedStore`, which scopes them to one caller."""

    # organization units (store.orgs)
    def get_org(self, org_id: int) -> Unit | None: ...

    def org_path(self, org_id: int) -> str | None:
        """The unit's path, None for an unknown unit (cached: units never move)."""
        ...

    def list_orgs(self, scope: Scope) -> list[Unit]:
        """Every unit of the subtree, by id."""
        ...

    def add_org(self, name: str, kind: UnitKind, parent: Unit, now_ms: int) -> Unit: ...

    def unit_paths(self) -> UnitPaths:
        """Units of the fences below the platform, and then of every car and device."""
        ...

    def unit_rules(self) -> dict[str, str]:
        """Unit path -> its threshold overrides (JSON text), for units that have any."""
        ...

    def put_unit_rules(self, org_id: int, rules: str, now_ms: int) -> None:
        """Stores a unit's threshold overrides (JSON text); `{}` removes them."""
        ...

    def vehicle_paths(self) -> dict[str, str]:
        """Car id -> its unit's path."""
        ...

    def caller_by_key(self, key_hash: str) -> Caller | None:
        """The key's name, role, unit and unit path, for the API's checks."""
        ...

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
        limit: int | None = None,
    ) -> PositionBatch:
        """Positions with from_ms <= fix time < to_ms in time order, thinned as `thin` does,
        read page by page; with `limit`, at most `limit + 1` come back and reading stops there."""
        ...

    def positions_since(self, cursor: int, limit: int) -> PositionPage:
        """Up to `limit` positions stored after `cursor` (0: from the start), in store order."""
        ...

    def positions_between(self, from_ms: int, to_ms: int) -> PositionPage:
        """Every position with from_ms <= fix time < to_ms, grouped by device, each device's
        in fix-time order (the engine's batch order); `cursor` is 0. Callers page through
        history with windows of time (`store.history.pages`)."""
        ...

    def drop_positions_before(self, cutoff_ms: int) -> int:
        """Retention: deletes stored positions whose fix time is before `cutoff_ms` (on
        PostgreSQL's daily partitions, whole days: those ending at or before it); returns how
        many positions (SQLite) or day partitions (PostgreSQL) went. Latest positions stay."""
        ...

    # devices
    def upsert_device(self, device: Device) -> None:
        """Creates the device or replaces its fields (None keeps what is stored); an identity
        field already recorded is never replaced here (`reprovision_device` does that)."""
        ...

    def reprovision_device(self, device: Device) -> Device | None:
        """Replaced hardware: sets the device's identity fields and auth code to exactly those
        given (None clears them: the next registration records them, issues a code); keeps the
        rest. Returns the device as stored, None for an unknown terminal."""
        ...

    def platform_secret(self, name: str) -> str:
        """A secret every process of the deployment shares (64 hex digits), created by the
        first process that asks (`store.platform_secrets`)."""
        ...

    def unbind_device(self, terminal: str) -> bool:
        """Clears the device's car (the tracker was taken off it); False for an unknown one."""
        ...

    def get_device(self, terminal: str) -> Device | None: ...

    def list_devices(self) -> list[Device]: ...

    def touch_devices(self, terminals: Sequence[str], seen_ms: int) -> None:
        """Records a report (heartbeat, any message) from these terminals at `seen_ms`."""
        ...

    def device_clocks(self, terminals: Sequence[str]) -> dict[str, DeviceClock]:
        """The clock state of those terminals that have reported positions."""
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
        self,
        command_id: int,
        state: CommandState,
        now_ms: int,
        serial: int | None = None,
        reply: str | None = None,
    ) -> None:
        """Moves a command to `state` (SENT counts an attempt and records the serial used;
        `reply`, the terminal's answer as JSON, is kept)."""
        ...

    def get_command(self, command_id: int) -> QueuedCommand | None: ...

    def claim_command(self, command_id: int, now_ms: int) -> bool:
        """Queued → sent (one attempt more) for the one delivery that gets it; False when the
        command was not queued any more."""
        ...

    def terminals_with_queued_commands(self, held_by: str) -> set[str]:
        """Terminals whose session the gateway `held_by` holds with a command waiting."""
        ...

    def notify(self, channel: str, payload: str) -> None:
        """Tells every process listening on `channel` (PostgreSQL NOTIFY; nothing on SQLite,
        which has one process). `enqueue_command` tells `lienwatch_commands` itself."""
        ...

    # -- session presence (store.presence): which gateway process holds a terminal's session

    def gateway_alive(self, gateway: str, address: str, now_ms: int, dead_before_ms: int) -> None:
        """The gateway's heartbeat; forgets gateways not seen since `dead_before_ms`."""
        ...

    def update_sessions(
        self, gateway: str, held: Sequence[tuple[str, int]], released: Sequence[str]
    ) -> None:
        """Sessions the gateway now holds (terminal, since_ms) and ones it let go."""
        ...

    def drop_gateway(self, gateway: str) -> None:
        """A stopping gateway holds nothing any more."""
        ...

    def session_gateways(self, terminals: Sequence[str], alive_since_ms: int) -> dict[str, str]:
        """terminal -> the gateway holding its session (one seen at or after `alive_since_ms`)."""
        ...

    # -- a detector process reading the positions stream (`positions_since`) ----------------

    def last_position_seq(self) -> int:
        """The end of the positions stream as committed now (0 when empty)."""
        ...

    def detector_cursor(self, name: str) -> int | None:
        """The stream position the detector `name` saved, None before its first save."""
        ...

    def save_detector_cursor(self, name: str, seq: int, now_ms: int) -> None: ...

    # -- detector partitions (store.detector_partitions): checkpoints and heartbeats ---------

    def partition_checkpoint(self, partitions: int, part: int) -> Checkpoint | None: ...

    def claim_partition(
        self, partitions: int, part: int, owner: str, seq: int, now_ms: int
    ) -> None: ...

    def save_partition_checkpoint(
        self, partitions: int, part: int, owner: str, seq: int, state: bytes, now_ms: int
    ) -> bool: ...

    def lowest_partition_cursor(self, partitions: int) -> int | None: ...

    def detector_heartbeat(self, member: str, place: str, owned: int, now_ms: int) -> None: ...

    def detector_member(self, member: str) -> DetectorMember | None: ...

    def forget_detector_members(self, before_ms: int) -> int: ...

    # alerts (one row per incident: type, vehicle, device, fence and time) and webhook outbox
    def add_alerts(
        self, alerts: Sequence[Alert], now_ms: int, webhook_urls: Sequence[str] = ()
    ) -> AlertsAdded:
        """Stores the alerts not stored yet (open at `now_ms`) and, in the same transaction,
        one outbox row per webhook URL for each of them; an alert already stored is returned
        as it is, never duplicated (a restart re-adding it is a no-op)."""
        ...

    def list_alerts(
        self,
        *,
        alert_type: str | None = None,
        since_ms: int | None = None,
        vehicle_id: str | None = None,
        state: AlertState | None = None,
        after_id: int = 0,
        limit: int = 100,
        scope: Scope | None = None,
    ) -> list[StoredAlert]:
        """Alerts with id > after_id matching every filter given (`since_ms`: alert time at or
        after it; `scope`: of its units), by id, at most `limit`."""
        ...

    def get_alert(self, alert_id: int) -> StoredAlert | None: ...

    def last_alert_id(self) -> int:
        """The highest alert id stored, 0 when there is none."""
        ...

    def transition_alert(
        self, alert_id: int, state: AlertState, actor: str, note: str | None, now_ms: int
    ) -> StoredAlert:
        """Moves the alert as `alerts.lifecycle.transition` allows, atomically; raises
        AlertNotFoundError or `alerts.lifecycle.TransitionError`."""
        ...

    def assign_alert(
        self, alert_id: int, assignee: str | None, actor: str, note: str | None, now_ms: int
    ) -> StoredAlert:
        """Hands the alert to `assignee` (None: nobody) as `alerts.lifecycle.assign` allows,
        atomically; raises AlertNotFoundError or `alerts.lifecycle.TransitionError`."""
        ...

    def due_webhooks(
        self, now_ms: int, limit: int, lease_ms: int = 60_000
    ) -> list[WebhookDelivery]:
        """Claims pending deliveries whose next attempt is due, oldest first: their next
        attempt moves `lease_ms` ahead, so a crash mid-attempt retries them after that."""
        ...

    def finish_webhook_attempt(
        self, delivery_id: int, now_ms: int, *, error: str | None, retry_at_ms: int | None
    ) -> None:
        """Records one attempt: delivered when `error` is None, else pending until
        `retry_at_ms`, or failed for good when that is None."""
        ...

    def list_webhooks(self, alert_id: int | None = None) -> list[WebhookDelivery]:
        """Outbox rows (of one alert, or all), by id."""
        ...

    # -- HTTP API: keys, fences, device pages, command log --------------------------------------

    def create_api_key(self, key: ApiKey, *, replace: bool = False) -> bool:
        """Stores the key under its name; False when the name is taken and not `replace`."""
        ...

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    def list_api_keys(self, scope: Scope | None = None) -> list[ApiKey]:
        """Every key (of `scope`'s units), by name."""
        ...

    def delete_api_key(self, name: str) -> bool:
        """Removes the key; False when there was none of that name."""
        ...

    def put_fences(self, fences: Sequence[FenceFeature], now_ms: int) -> int:
        """Creates or replaces fences by id in one transaction; returns the new set version."""
        ...

    def list_fences(self, scope: Scope | None = None) -> list[StoredFence]:
        """Every fence (of `scope`'s units), by id."""
        ...

    def get_fence(self, fence_id: str) -> StoredFence | None: ...

    def delete_fence(self, fence_id: str, now_ms: int) -> int | None:
        """Removes the fence; returns the new set version, None when there was no such fence."""
        ...

    def fences_version(self) -> int:
        """The fence-set version: it grows with every change (0: never changed)."""
        ...

    # candidate risk spots (`gathering` alerts write them, in the alert's transaction): a
    # unit's candidates and decisions (store.spot_library; `store.scoped.spots` adds the fence
    # an accepted one becomes, in the same transaction)
    def spot_candidates_in(
        self,
        scope: Scope | None,
        *,
        status: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[SpotCandidate]: ...

    def spot_candidate_by_id(self, candidate_id: int) -> SpotCandidate | None: ...

    def mark_spot_candidate(
        self,
        candidate_id: int,
        *,
        status: str,
        fence_id: str | None,
        by: str,
        note: str | None,
        now_ms: int,
    ) -> SpotCandidate:
        """Moves a proposed candidate to `status`; SpotCandidateError `missing`, or `decided`
        when it is no longer proposed."""
        ...

    def loan_borrowers(self) -> dict[str, str]:
        """vehicle_id -> `borrower:{id}`, its open loan's borrower record (store.loan_borrowers):
        whom the live `gathering` rule counts; a car without one is its own borrower."""
        ...

    # backtest jobs the API runs (store.backtest_jobs)
    def add_backtest(
        self,
        *,
        org: int,
        since_ms: int,
        until_ms: int,
        rules: str | None,
        tolerance_ms: int,
        requested_by: str,
        runner: str,
        now_ms: int,
        beat_ms: int | None = None,
    ) -> BacktestRecord: ...

    def get_backtest(self, job_id: int) -> BacktestRecord | None: ...

    def list_backtests(
        self, scope: Scope | None, *, after_id: int = 0, limit: int = 100
    ) -> list[BacktestRecord]: ...

    def backtest_started(self, job_id: int, now_ms: int) -> None: ...

    def backtest_progress(self, runner: str, job_id: int, done_ms: int, now_ms: int) -> None: ...

    def backtest_finished(
        self,
        job_id: int,
        *,
        report: dict[str, object] | None,
        positions: int,
        error: str | None,
        now_ms: int,
    ) -> None: ...

    def interrupt_stale_backtests(self, before_ms: int, now_ms: int) -> int: ...

    def interrupt_runner_backtests(self, runner: str, now_ms: int) -> int: ...

    def find_devices(
        self,
        *,
        vehicle_id: str | None = None,
        after: str = "",
        limit: int = 100,
        scope: Scope | None = None,
    ) -> list[Device]:
        """Up to `limit` devices with terminal > `after`, by terminal; only `vehicle_id`'s,
        only `scope`'s (None: every unit's)."""
        ...

    def record_command(
        self, terminal: str, msg_id: int, body: bytes, state: CommandState, now_ms: int
    ) -> int:
        """Records a command already sent (answered or failed), so it has an id like queued ones."""
        ...

    def log_command(self, log: CommandLog) -> None:
        """Stores (or replaces) the API's record of who issued a command and its answer."""
        ...

    def command_log(self, command_id: int) -> CommandLog | None: ...

    def list_commands(self, terminal: str, limit: int) -> list[QueuedCommand]:
        """The terminal's most recent commands, newest first."""
        ...

    # -- loans and their case log (the `loans` package gives the meaning) ---------------------

    def create_loan(self, loan: Loan) -> Loan:
        """Stores a new loan; returns it with its id. LoanExistsError when the number is taken."""
        ...

    def get_loan(self, loan_no: str) -> Loan | None: ...

    def find_loans(self, where: LoanFilter, *, after_id: int = 0, limit: int = 100) -> list[Loan]:
        """Up to `limit` loans with id > after_id matching `where`, by id."""
        ...

    def update_loan(self, loan_no: str, change: LoanChange) -> tuple[Loan, CaseAction]:
        """Applies `change` to the loan atomically (no other update interleaves) and appends
        its log entry; returns both as stored. LoanNotFoundError, or what `change` raises
        (then nothing is written)."""
        ...

    def loan_actions(
        self, loan_no: str, *, after_id: int = 0, limit: int = 100
    ) -> list[CaseAction]:
        """The loan's log entries with id > after_id, oldest first."""
        ...

    def unmonitored_vehicle_ids(self) -> set[str]:
        """Cars whose loans are all settled, disposed or written off (`loans.UNMONITORED`):
        their trackers' alerts are to be muted. A car with no loan at all is not in it."""
        ...

    # -- the sweep's past-due loans and the cars' loan states --------------------------------

    def past_due_loans(self, today: date, *, after_id: int = 0, limit: int = 100) -> list[Loan]:
        """Up to `limit` active or restructured loans with id > after_id whose days past due
        on `today` are above 0 (`Loan.dpd`): the ones to move to overdue. By id."""
        ...

    def loan_states(self, vehicle_ids: Sequence[str] | None = None) -> dict[str, LoanState]:
        """vehicle_id -> the state of its open (not settled, not written-off) loan, the worst
        (`loans.WORST_FIRST`) when it has several; of every car when `vehicle_ids` is None.
        Cars without an open loan are not in it."""
        ...

    # -- idempotency keys of the HTTP API (store.idempotency) --------------------------------

    def reserve_request(
        self, scope: str, key: str, fingerprint: str, now_ms: int
    ) -> KeptResponse | None:
        """Reserves a key for a request: None when reserved now, else what is kept for it."""
        ...

    def keep_response(
        self, scope: str, key: str, status: int, content_type: str, body: bytes
    ) -> None: ...

    def release_request(self, scope: str, key: str) -> None: ...

    def expire_requests(self, before_ms: int) -> int: ...

    def close(self) -> None: ...
