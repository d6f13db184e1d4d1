"""Fences and alerts, as one caller sees them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from alerts.lifecycle import AlertState, StoredAlert
from organizations import ROOT_ID
from store.interface import FenceFeature, StoredFence
from store.scoped.base import NotInScopeError, ScopeBase


class WatchRecords(ScopeBase):
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

    def alerts(self, **filters: Any) -> list[StoredAlert]:
        return self._s.list_alerts(**filters, scope=self.scope)

    def alert(self, alert_id: int) -> StoredAlert | None:
        found = self._s.get_alert(alert_id)
        return found if found is not None and self.visible(found.org) else None

    def transition_alert(
        self, alert_id: int, state: AlertState, note: str | None, now_ms: int
    ) -> StoredAlert:
        """Raises NotInScopeError, or what the adapter's `transition_alert` raises."""
        return self._change_alert(
            alert_id,
            f"alert.{state.value}",
            lambda: self._s.transition_alert(alert_id, state, self.actor, note, now_ms),
        )

    def assign_alert(
        self, alert_id: int, assignee: str | None, note: str | None, now_ms: int
    ) -> StoredAlert:
        """Raises NotInScopeError, or what the adapter's `assign_alert` raises."""
        return self._change_alert(
            alert_id,
            "alert.assign",
            lambda: self._s.assign_alert(alert_id, assignee, self.actor, note, now_ms),
        )

    def _change_alert(
        self, alert_id: int, what: str, change: Callable[[], StoredAlert]
    ) -> StoredAlert:
        """One audited change of an alert of the subtree, in one transaction."""
        with self.transaction(what):
            known = self.alert(alert_id)
            if known is None:
                raise NotInScopeError(f"no alert {alert_id}")
            moved = change()
            self._audit(what, f"alert:{alert_id}", known.org or ROOT_ID, known, moved)
        return moved
