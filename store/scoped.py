"""The store as one API caller sees it: only its unit's subtree, every change audited.

`ScopedStore` wraps an adapter with the caller's `Scope` and name. It is the only way the API
reaches resources (`api.stores.StoreAccess.scoped`): lists are filtered in SQL by
`store.orgs.scope_condition`; a resource named by id outside the subtree reads as missing
(`NotInScopeError` where the route would otherwise act on it, mapped to 404 exactly as an
unknown id); every change runs in one transaction with its audit row (`store.audit`).
Units never move, so each adapter caches the path of a unit id (`store.orgs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from alerts.lifecycle import AlertState, StoredAlert
from loans import Borrower, CaseAction, Loan, Vehicle, masked
from organizations import ROOT_ID, OrgError, Scope, Unit, UnitKind, check_new_unit
from positions import PositionBatch
from store import approvals as approval_rows
from store import endpoints as endpoint_rows
from store import parties
from store.approvals import Approval
from store.audit import AuditEntry, read_entries, write_entry
from store.endpoints import Endpoint
from store.interface import (
    ApiKey,
    CommandLog,
    CommandState,
    Device,
    DeviceClock,
    FenceFeature,
    LoanChange,
    LoanExistsError,
    LoanFilter,
    LoanNotFoundError,
    QueuedCommand,
    Store,
    StoredFence,
    StoreError,
)

T = TypeVar("T")


class NotInScopeError(StoreError):
    """The named thing does not exist for this caller (missing, or outside its subtree)."""


class ApprovalError(StoreError):
    """An approval refused: `reason` is `own_request`, `expired` or `decided`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ScopedStore:
    """See the module docstring. `clock_ms` dates the audit rows."""

    def __init__(self, store: Store, scope: Scope, actor: str, clock_ms: Callable[[], int]):
        self._s = store
        self.scope = scope
        self.actor = actor
        self._clock_ms = clock_ms

    # -- scope ---------------------------------------------------------------------------------

    def visible(self, org_id: int | None) -> bool:
        """Whether a resource of unit `org_id` is in the subtree (None: the root's)."""
        path = self._s.org_path(ROOT_ID if org_id is None else org_id)
        return path is not None and self.scope.contains(path)

    def target_org(self, org_id: int | None, default: int | None = None) -> int:
        """The unit a created resource goes to: `org_id` when given (it must be in the
        subtree), else `default`, else the caller's unit."""
        if org_id is None:
            return self.scope.org if default is None else default
        if not self.visible(org_id):
            raise NotInScopeError(f"org: no org {org_id}")
        return org_id

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        with self._s._atomic(what):
            yield

    def _audit(
        self, action: str, target: str, org: int, before: object | None, after: object | None
    ) -> None:
        write_entry(
            self._s,
            at_ms=self._clock_ms(),
            actor=self.actor,
            actor_org=self.scope.org,
            org=org,
            action=action,
            target=target,
            before=before,
            after=after,
        )

    # -- organization units --------------------------------------------------------------------

    def units(self) -> list[Unit]:
        return self._s.list_orgs(self.scope)

    def unit(self, org_id: int) -> Unit | None:
        found = self._s.get_org(org_id)
        return found if found is not None and self.scope.contains(found.path) else None

    def create_unit(self, name: str, kind: UnitKind, parent_id: int | None) -> Unit:
        """Raises NotInScopeError (the parent is not visible) or OrgError (not allowed)."""
        with self.transaction("create org"):
            if parent_id is None:
                if kind is not UnitKind.TENANT:
                    raise OrgError("parent", f"a {kind} needs a parent unit")
                parent = self._s.get_org(ROOT_ID)
            else:
                parent = self.unit(parent_id)
            if parent is None:
                raise NotInScopeError(f"parent: no org {parent_id}")
            check_new_unit(kind, parent, self.scope)
            unit = self._s.add_org(name, kind, parent, self._clock_ms())
            self._audit("org.create", f"org:{unit.id}", unit.id, None, unit)
        return unit

    # -- API keys ------------------------------------------------------------------------------

    def keys(self) -> list[ApiKey]:
        return self._s.list_api_keys(self.scope)

    def key(self, name: str) -> ApiKey | None:
        return next((k for k in self.keys() if k.name == name), None)

    def create_key(self, key: ApiKey) -> bool:
        """Stores a key of a unit in the subtree; False when the name is taken (anywhere)."""
        with self.transaction("create api key"):
            org = self.target_org(key.org)
            taken = self._s._run(
                "read api key", "SELECT org_id FROM api_keys WHERE name = ?", (key.name,)
            ).rows
            if taken and not self.visible(int(taken[0][0])):
                raise NotInScopeError(f"name: no key {key.name!r} here")
            record = replace(key, org=org)
            created = self._s.create_api_key(record)
            if created:
                self._audit("key.create", f"key:{key.name}", org, None, record)
        return created

    def delete_key(self, name: str) -> bool:
        with self.transaction("delete api key"):
            found = self.key(name)
            if found is None or not self._s.delete_api_key(name):
                return False
            self._audit("key.delete", f"key:{name}", found.org, found, None)
        return True

    # -- devices -------------------------------------------------------------------------------

    def device(self, terminal: str) -> Device | None:
        found = self._s.get_device(terminal)
        return found if found is not None and self.visible(found.org) else None

    def devices(
        self, *, vehicle_id: str | None = None, after: str = "", limit: int = 100
    ) -> list[Device]:
        return self._s.find_devices(
            vehicle_id=vehicle_id, after=after, limit=limit, scope=self.scope
        )

    def latest(self, devices: Sequence[Device]) -> PositionBatch:
        """Latest positions of devices read through this scope; device indexes `devices`."""
        return self._s.latest([d.terminal for d in devices if self.visible(d.org)])

    def clocks(self, devices: Sequence[Device]) -> dict[str, DeviceClock]:
        return self._s.device_clocks([d.terminal for d in devices if self.visible(d.org)])

    def track(self, device: Device, from_ms: int, to_ms: int, **options: Any) -> PositionBatch:
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        return self._s.track(device.terminal, from_ms, to_ms, **options)

    def _vehicle_org(self, vehicle_id: str) -> int | None:
        rows = self._s._run(
            "read vehicle", "SELECT org_id FROM vehicles WHERE vehicle_id = ?", (vehicle_id,)
        ).rows
        return int(rows[0][0]) if rows else None

    def _claim_vehicle(self, vehicle_id: str, org: int) -> None:
        """Records a new car in unit `org`; one known outside the subtree is not found."""
        known = self._vehicle_org(vehicle_id)
        if known is None:
            self._s._run(
                "create vehicle",
                "INSERT INTO vehicles (vehicle_id, org_id) VALUES (?, ?)",
                (vehicle_id, org),
            )
        elif not self.visible(known):
            raise NotInScopeError(f"vehicle_id: no vehicle {vehicle_id!r}")

    def provision(
        self,
        given: Device,
        *,
        org: int | None,
        unbind: bool,
        check: Callable[[Device], None],
    ) -> tuple[bool, Device]:
        """Creates or updates a device of the subtree (`check` vets a known one first);
        returns whether it was created and the device as stored."""
        with self.transaction("provision device"):
            known = self._s.get_device(given.terminal)
            if known is not None and not self.visible(known.org):
                raise NotInScopeError(f"no device {given.terminal}")
            if known is not None:
                check(known)
            vehicle_org = None if given.vehicle_id is None else self._vehicle_org(given.vehicle_id)
            current = None if known is None else known.org
            target = self.target_org(org, vehicle_org if vehicle_org is not None else current)
            if given.vehicle_id is not None:
                self._claim_vehicle(given.vehicle_id, target)
            self._s.upsert_device(given)
            if unbind:
                self._s.unbind_device(given.terminal)
            self._s._run(
                "set device org",
                "UPDATE devices SET org_id = ? WHERE terminal = ?",
                (target, given.terminal),
            )
            stored = self._s.get_device(given.terminal)
            assert stored is not None
            action = "device.create" if known is None else "device.update"
            self._audit(action, f"device:{given.terminal}", target, known, stored)
        return known is None, stored

    def reprovision(self, given: Device) -> Device | None:
        with self.transaction("reprovision device"):
            known = self.device(given.terminal)
            if known is None:
                return None
            stored = self._s.reprovision_device(given)
            self._audit("device.reprovision", f"device:{given.terminal}", known.org, known, stored)
        return stored

    def move_vehicle(self, vehicle_id: str, org_id: int) -> int:
        """Moves a car with its devices, loans and alerts to unit `org_id` (in the subtree);
        returns how many devices, loans and alerts moved. NotInScopeError for a car or unit
        not visible."""
        with self.transaction("move vehicle"):
            known = self._vehicle_org(vehicle_id)
            if known is None or not self.visible(known):
                raise NotInScopeError(f"no vehicle {vehicle_id!r}")
            target = self.target_org(org_id)
            moved = 0
            for table in ("devices", "loans", "alerts"):
                moved += self._s._run(
                    "move vehicle",
                    f"UPDATE {table} SET org_id = ? WHERE vehicle_id = ?",
                    (target, vehicle_id),
                ).rowcount
            self._s._run(
                "move vehicle",
                "UPDATE vehicles SET org_id = ? WHERE vehicle_id = ?",
                (target, vehicle_id),
            )
            self._audit(
                "vehicle.move",
                f"vehicle:{vehicle_id}",
                target,
                {"vehicle_id": vehicle_id, "org": known},
                {"vehicle_id": vehicle_id, "org": target},
            )
        return moved

    def vehicle_org(self, vehicle_id: str) -> int | None:
        """The car's unit when it is in the subtree."""
        known = self._vehicle_org(vehicle_id)
        return known if known is not None and self.visible(known) else None

    # -- cars and borrowers as records ---------------------------------------------------------

    def vehicle(self, vehicle_id: str) -> Vehicle | None:
        found = parties.get_vehicle(self._s, vehicle_id)
        return found if found is not None and self.visible(found.org) else None

    def vehicles(self, *, after: str = "", limit: int = 100) -> list[Vehicle]:
        return parties.find_vehicles(self._s, self.scope, after, limit)

    def put_vehicle(self, given: Vehicle, org: int | None) -> tuple[bool, Vehicle]:
        """Creates the car (in unit `org`, default the caller's) or replaces its details;
        `given.dealer` must be a dealer unit of the subtree. Another `org` for a known car
        moves it as `move_vehicle` does, in the same transaction."""
        with self.transaction("write vehicle"):
            known = parties.get_vehicle(self._s, given.vehicle_id)
            if known is not None and not self.visible(known.org):
                raise NotInScopeError(f"no vehicle {given.vehicle_id!r}")
            if given.dealer is not None:
                dealer = self.unit(given.dealer)
                if dealer is None or dealer.kind is not UnitKind.DEALER:
                    raise NotInScopeError(f"dealer: no dealer {given.dealer}")
            if known is not None and org is not None and org != known.org:
                self.move_vehicle(given.vehicle_id, org)  # with its devices, loans and alerts
                known = replace(known, org=org)
            target = known.org if known is not None else self.target_org(org)
            stored = replace(given, org=target)
            parties.put_vehicle(self._s, stored)
            action = "vehicle.create" if known is None else "vehicle.update"
            self._audit(action, f"vehicle:{given.vehicle_id}", target, known, stored)
        return known is None, stored

    def borrower(self, borrower_id: int) -> Borrower | None:
        found = parties.get_borrower(self._s, borrower_id)
        return found if found is not None and self.visible(found.org) else None

    def borrowers(self, *, after_id: int = 0, limit: int = 100) -> list[Borrower]:
        return parties.find_borrowers(self._s, self.scope, after_id, limit)

    def create_borrower(
        self, name: str, id_number: str | None, phone: str | None, org: int | None
    ) -> Borrower:
        with self.transaction("create borrower"):
            target = self.target_org(org)
            given = Borrower(0, target, name, id_number, phone, self._clock_ms())
            stored = parties.add_borrower(self._s, given)
            # The log keeps what a viewer would see: personal numbers stay out of it.
            self._audit("borrower.create", f"borrower:{stored.id}", target, None, masked(stored))
        return stored

    # -- fences --------------------------------------------------------------------------------

    def fences_version(self) -> int:
        return self._s.fences_version()

    def fences(self) -> list[StoredFence]:
        return self._s.list_fences(self.scope)

    def fence(self, fence_id: str) -> StoredFence | None:
        found = self._s.get_fence(fence_id)
        return found if found is not None and self.visible(found.org) else None

    def put_fences(self, rows: Sequence[FenceFeature], orgs: dict[str, int | None]) -> int:
        """Creates or replaces fences of the subtree; `orgs` gives a fence's unit (None: a
        replaced fence keeps its own, a new one takes the caller's)."""
        with self.transaction("put fences"):
            before: dict[str, StoredFence | None] = {}
            placed: list[FenceFeature] = []
            for row in rows:
                known = self._s.get_fence(row.id)
                if known is not None and not self.visible(known.org):
                    raise NotInScopeError(f"no fence {row.id!r}")
                before[row.id] = known
                org = self.target_org(orgs.get(row.id), None if known is None else known.org)
                placed.append(replace(row, org=org))
            version = self._s.put_fences(placed, self._clock_ms())
            for row in placed:
                action = "fence.create" if before[row.id] is None else "fence.update"
                self._audit(action, f"fence:{row.id}", row.org, before[row.id], row)
        return version

    def delete_fence(self, fence_id: str) -> int | None:
        with self.transaction("delete fence"):
            known = self.fence(fence_id)
            if known is None:
                return None
            version = self._s.delete_fence(fence_id, self._clock_ms())
            self._audit("fence.delete", f"fence:{fence_id}", known.org, known, None)
        return version

    # -- alerts --------------------------------------------------------------------------------

    def alerts(self, **filters: Any) -> list[StoredAlert]:
        return self._s.list_alerts(**filters, scope=self.scope)

    def alert(self, alert_id: int) -> StoredAlert | None:
        found = self._s.get_alert(alert_id)
        return found if found is not None and self.visible(found.org) else None

    def transition_alert(
        self, alert_id: int, state: AlertState, note: str | None, now_ms: int
    ) -> StoredAlert:
        """Raises NotInScopeError, or what the adapter's `transition_alert` raises."""
        with self.transaction("transition alert"):
            known = self.alert(alert_id)
            if known is None:
                raise NotInScopeError(f"no alert {alert_id}")
            moved = self._s.transition_alert(alert_id, state, self.actor, note, now_ms)
            self._audit(f"alert.{state.value}", f"alert:{alert_id}", known.org or ROOT_ID,
                        known, moved)  # fmt: skip
        return moved

    # -- loans ---------------------------------------------------------------------------------

    def loans(self, where: LoanFilter, *, after_id: int = 0, limit: int = 100) -> list[Loan]:
        return self._s.find_loans(replace(where, scope=self.scope), after_id=after_id, limit=limit)

    def loan(self, loan_no: str) -> Loan | None:
        found = self._s.get_loan(loan_no)
        return found if found is not None and self.visible(found.org) else None

    def create_loan(self, loan: Loan, org: int | None) -> Loan:
        """LoanExistsError when the number is taken in the subtree; NotInScopeError when it
        (or the car) is another unit's."""
        with self.transaction("create loan"):
            known = self._s.get_loan(loan.loan_no)
            if known is not None:
                if not self.visible(known.org):
                    raise NotInScopeError(f"no loan {loan.loan_no}")
                raise LoanExistsError(f"loan {loan.loan_no} already exists")
            if loan.borrower_id is not None and self.borrower(loan.borrower_id) is None:
                raise NotInScopeError(f"borrower_id: no borrower {loan.borrower_id}")
            target = self.target_org(org, self._vehicle_org(loan.vehicle_id))
            self._claim_vehicle(loan.vehicle_id, target)
            stored = self._s.create_loan(replace(loan, org=target))
            self._audit("loan.create", f"loan:{loan.loan_no}", target, None, stored)
        return stored

    def update_loan(self, loan_no: str, change: LoanChange) -> tuple[Loan, CaseAction]:
        with self.transaction("update loan"):
            known = self.loan(loan_no)
            if known is None:
                raise LoanNotFoundError(f"no loan {loan_no}")
            loan, action = self._s.update_loan(loan_no, change)
            self._audit(f"loan.{action.kind.value}", f"loan:{loan_no}", known.org, known, loan)
        return loan, action

    def loan_actions(
        self, loan_no: str, *, after_id: int = 0, limit: int = 100
    ) -> list[CaseAction]:
        if self.loan(loan_no) is None:
            raise LoanNotFoundError(f"no loan {loan_no}")
        return self._s.loan_actions(loan_no, after_id=after_id, limit=limit)

    # -- commands ------------------------------------------------------------------------------

    def command(self, command_id: int) -> tuple[QueuedCommand, CommandLog | None] | None:
        """The command and the API's record of it, when its unit is in the subtree (the
        record's, else its device's)."""
        command = self._s.get_command(command_id)
        if command is None:
            return None
        log = self._s.command_log(command_id)
        if log is not None:
            org: int | None = log.org
        else:
            device = self._s.get_device(command.terminal)
            org = None if device is None else device.org
        return (command, log) if self.visible(org) else None

    def commands(self, device: Device, limit: int) -> list[tuple[QueuedCommand, CommandLog | None]]:
        """The device's most recent commands of units in the subtree, newest first."""
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        found = []
        for command in self._s.list_commands(device.terminal, limit):
            log = self._s.command_log(command.id)
            if self.visible(device.org if log is None else log.org):
                found.append((command, log))
        return found

    def record_command(
        self,
        device: Device,
        *,
        command_id: int | None,
        msg_id: int,
        body: bytes,
        state: CommandState,
        request: str,
        reply: str | None,
        issued_by: str | None = None,
    ) -> int:
        """Records who issued a command to a device of the subtree (recording the command
        itself first when the sender gave it no id); returns the command id."""
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        with self.transaction("log command"):
            if command_id is None:
                command_id = self._s.record_command(
                    device.terminal, msg_id, body, state, self._clock_ms()
                )
            log = CommandLog(command_id, issued_by or self.actor, request, reply, device.org)
            self._s.log_command(log)
            self._audit("command.send", f"command:{command_id}", device.org, None, log)
        return command_id

    # -- two-person approvals ------------------------------------------------------------------

    def request_approval(
        self, device: Device, msg_id: int, body: bytes, request: str, ttl_ms: int
    ) -> Approval:
        if not self.visible(device.org):
            raise NotInScopeError(f"no device {device.terminal}")
        now = self._clock_ms()
        with self.transaction("request approval"):
            approval = approval_rows.add(
                self._s,
                terminal=device.terminal,
                org=device.org,
                msg_id=msg_id,
                body=body,
                request=request,
                requested_by=self.actor,
                now_ms=now,
                expires_ms=now + ttl_ms,
            )
            self._audit("command.request", f"approval:{approval.id}", device.org, None, approval)
        return approval

    def approvals(
        self, *, state: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[Approval]:
        approval_rows.expire(self._s, self._clock_ms())
        return approval_rows.find(self._s, self.scope, state=state, after_id=after_id, limit=limit)

    def approval(self, approval_id: int) -> Approval | None:
        approval_rows.expire(self._s, self._clock_ms())
        return approval_rows.get(self._s, approval_id, self.scope)

    def decide(self, approval_id: int, approve: bool) -> Approval:
        """Approves or rejects a pending request of the subtree made by someone else.
        NotInScopeError, or ApprovalError saying why it cannot be decided."""
        now = self._clock_ms()
        state = "approved" if approve else "rejected"
        with self.transaction("decide approval"):
            approval_rows.expire(self._s, now)
            known = approval_rows.get(self._s, approval_id, self.scope)
            if known is None:
                raise NotInScopeError(f"no approval {approval_id}")
            if known.state != "pending":
                reason = "expired" if known.state == "expired" else "decided"
                raise ApprovalError(reason, f"approval {approval_id} is {known.state}")
            if known.requested_by == self.actor:
                raise ApprovalError(
                    "own_request", "a request is approved or rejected by someone else"
                )
            if not approval_rows.decide(self._s, approval_id, state, self.actor, now):
                raise ApprovalError("decided", f"approval {approval_id} was decided meanwhile")
            decided = approval_rows.get(self._s, approval_id, None)
            assert decided is not None
            self._audit(f"command.{state}", f"approval:{approval_id}", known.org, known, decided)
        return decided

    def attach_command(self, approval: Approval, command_id: int) -> Approval:
        approval_rows.attach_command(self._s, approval.id, command_id)
        return replace(approval, command_id=command_id)

    # -- webhook receivers of units ------------------------------------------------------------

    def endpoints(self) -> list[Endpoint]:
        return endpoint_rows.find(self._s, self.scope)

    def add_endpoint(self, url: str, secret: str, org: int | None) -> Endpoint | None:
        """A receiver of the alerts of unit `org`'s subtree (default the caller's unit);
        None when that unit already has the URL."""
        with self.transaction("add webhook endpoint"):
            target = self.target_org(org)
            added = endpoint_rows.add(self._s, target, url, secret, self.actor, self._clock_ms())
            if added is not None:
                self._audit("webhook.create", f"webhook:{added.id}", target, None, added)
        return added

    def remove_endpoint(self, endpoint_id: int) -> bool:
        with self.transaction("remove webhook endpoint"):
            found = endpoint_rows.find(self._s, self.scope, endpoint_id)
            if not found or not endpoint_rows.remove(self._s, endpoint_id):
                return False
            self._audit("webhook.delete", f"webhook:{endpoint_id}", found[0].org, found[0], None)
        return True

    # -- audit ---------------------------------------------------------------------------------

    def audit(self, *, after_id: int = 0, limit: int = 100) -> list[AuditEntry]:
        return read_entries(self._s, self.scope, after_id=after_id, limit=limit)
