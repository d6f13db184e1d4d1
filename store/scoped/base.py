"""What every part of `ScopedStore` stands on: the caller's scope, the transaction, the audit
row, and the lookups several parts share (a unit, a car's unit)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from organizations import ROOT_ID, Scope, Unit
from store.audit import AuditEntry, read_entries, write_entry
from store.interface import Store, StoreError


class NotInScopeError(StoreError):
    """The named thing does not exist for this caller (missing, or outside its subtree)."""


class ApprovalError(StoreError):
    """An approval refused: `reason` is `own_request`, `expired` or `decided`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ScopeBase:
    """The adapter, the caller's scope and name; `clock_ms` dates the audit rows."""

    def __init__(self, store: Store, scope: Scope, actor: str, clock_ms: Callable[[], int]):
        self._s = store
        self.scope = scope
        self.actor = actor
        self._clock_ms = clock_ms

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

    def unit(self, org_id: int) -> Unit | None:
        found = self._s.get_org(org_id)
        return found if found is not None and self.scope.contains(found.path) else None

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

    def audit(self, *, after_id: int = 0, limit: int = 100) -> list[AuditEntry]:
        return read_entries(self._s, self.scope, after_id=after_id, limit=limit)
