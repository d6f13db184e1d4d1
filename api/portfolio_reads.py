"""Whole-portfolio reads for the figures, exports and map, run on a store thread.

Built from the scoped store's own paged calls (`alerts`, `loans`, `devices`, `latest`): every
read keeps to the caller's subtree, as every other route does.
"""

from __future__ import annotations

from collections.abc import Iterator

from alerts.lifecycle import AlertState, StoredAlert
from api.fleet import Car, cars
from loans import Loan
from store.interface import Device, LoanFilter
from store.scoped import ScopedStore

PAGE = 1000


def alert_pages(
    store: ScopedStore,
    *,
    since_ms: int | None = None,
    state: AlertState | None = None,
    alert_type: str | None = None,
    vehicle_id: str | None = None,
    after_id: int = 0,
) -> Iterator[list[StoredAlert]]:
    """Alerts matching the filters a page at a time, by id."""
    while True:
        page = store.alerts(
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


def unresolved_alerts(store: ScopedStore, vehicle_id: str | None = None) -> list[StoredAlert]:
    """Open and acknowledged alerts, by id."""
    found = [
        alert
        for state in (AlertState.OPEN, AlertState.ACKNOWLEDGED)
        for page in alert_pages(store, state=state, vehicle_id=vehicle_id)
        for alert in page
    ]
    return sorted(found, key=lambda a: a.id)


def all_loans(store: ScopedStore) -> Iterator[Loan]:
    after_id = 0
    while True:
        page = store.loans(LoanFilter(), after_id=after_id, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after_id = page[-1].id


def all_devices(store: ScopedStore, vehicle_id: str | None = None) -> list[Device]:
    """The subtree's devices (those of one car when `vehicle_id` is given), by terminal."""
    found: list[Device] = []
    while True:
        page = store.devices(
            vehicle_id=vehicle_id, after=found[-1].terminal if found else "", limit=PAGE
        )
        found += page
        if len(page) < PAGE:
            return found


def snapshot(store: ScopedStore, now_ms: int, offline_after_ms: int) -> list[Car]:
    """Every car with its state (`api.fleet.cars`)."""
    devices = all_devices(store)
    if not devices:
        return []
    latest = store.latest(devices)
    return cars(devices, latest, unresolved_alerts(store), now_ms, offline_after_ms)
