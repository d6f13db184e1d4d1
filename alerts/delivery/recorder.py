"""Store first, then fan out: the one path new alerts take on the live side.

Runs on the detector's worker thread (blocking store calls). `add_alerts` is idempotent on the
incident key, so a retry after a failed write, or a restart re-detecting an incident, never
stores or sends an alert twice; only alerts new in this call reach the sinks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from alerts.delivery.ports import AlertLog
from alerts.lifecycle import StoredAlert
from alerts.model import Alert


class AlertRecorder:
    """`record(alerts, now_ms)`: stores them (webhook outbox rows in the same transaction) and
    hands the new ones to `publish` (e.g. `Fanout.publish_threadsafe`)."""

    def __init__(
        self,
        store_factory: Callable[[], AlertLog],
        publish: Callable[[Sequence[StoredAlert]], None],
        *,
        webhook_urls: Sequence[str] = (),
    ) -> None:
        self._store_factory = store_factory
        self._store: AlertLog | None = None
        self._publish = publish
        self.webhook_urls = tuple(webhook_urls)
        # Cars no longer watched (every loan on them settled, disposed or written off): their
        # alerts are neither stored nor sent. Replaced whole by the composition root.
        self.muted_vehicles: frozenset[str] = frozenset()
        # Whether an alert stands (e.g. a unit's fence applies to its own subtree's cars
        # only); None keeps every alert. Replaced whole by the composition root.
        self.keeps: Callable[[Alert], bool] | None = None

    def record(self, alerts: Sequence[Alert], now_ms: int) -> list[StoredAlert]:
        """Raises what the alert log raises (nothing published) when it cannot take them now."""
        muted = self.muted_vehicles
        if muted:
            alerts = [a for a in alerts if a.vehicle_id not in muted]
        keeps = self.keeps
        if keeps is not None:
            alerts = [a for a in alerts if keeps(a)]
        if not alerts:
            return []
        if self._store is None:
            self._store = self._store_factory()
        added = self._store.add_alerts(alerts, now_ms, self.webhook_urls)
        if added.new:
            self._publish(added.new)
        return added.new

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
