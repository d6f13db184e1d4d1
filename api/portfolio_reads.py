"""Whole-portfolio reads for the figures, exports and map, run on a store thread.

Built from the store's own paged calls (`list_alerts`, `find_loans`, `list_devices`,
`latest`), so every adapter serves them and every scope the store applies holds for them too.
"""

from __future__ import annotations

from collections.abc import Iterator

from alerts.lifecycle import AlertState, StoredAlert
from api.fleet import Car, cars
from loans import Loan
from store import Store
from store.interface import LoanFilter

PAGE = 1000


def alert_pages(
    store: Store,
    *,
    since_ms: int | None = None,
    state: AlertState | None = None,
    alert_type: str | None = None,
    vehicle_id: str | None = None,
    after_id: int = 0,
) -> Iterator[list[StoredAlert]]:
    """Alerts matching the filters a page at a time, by id."""
    while True:
        page = store.list_alerts(
            alert_type=alert_type,
            since_ms=since_ms,
            vehicle_id=vehicle_id,
            state=state,
            after_id=after_id,
            limit=PAGE,
        )
        if not page:
            return
        yield page
        if len(page) < PAGE:
            return
        after_id = page[-1].id


def unresolved_alerts(store: Store, vehicle_id: str | None = None) -> list[StoredAlert]:
    """Open and acknowledged alerts, by id."""
    found = [
        alert
        for state in (AlertState.OPEN, AlertState.ACKNOWLEDGED)
        for page in alert_pages(store, state=state, vehicle_id=vehicle_id)
        for alert in page
    ]
    return sorted(found, key=lambda a: a.id)


def all_loans(store: Store) -> Iterator[Loan]:
    after_id = 0
    while True:
        page = store.find_loans(LoanFilter(), after_id=after_id, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after_id = page[-1].id


def snapshot(store: Store, now_ms: int, offline_after_ms: int) -> list[Car]:
    """Every car with its state (`api.fleet.cars`)."""
    devices = store.list_devices()
    latest = store.latest([d.terminal for d in devices]) if devices else None
    if latest is None:
        return []
    return cars(devices, latest, unresolved_alerts(store), now_ms, offline_after_ms)
