"""Where the vehicle was when an alert fired, for the `place` of alert answers.

An alert records no position of its own (contracts section 3). `leave_allowed_area` carries
the fix that confirmed the departure in its details; for the rest, the device's last valid fix
at or before the alert's time is read, first within 10 minutes (most alerts fire on a fix),
then within 6 hours (a silence fires 2 hours after the last report). Runs on a store thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alerts.lifecycle import StoredAlert
from api.geocode import Place, places
from store import Store

NEAR_MS = 10 * 60_000
LOOKBACK_MS = 6 * 3_600_000


def alert_position(store: Store, terminal: str, time_ms: int) -> tuple[float, float] | None:
    """The device's last valid fix at or before `time_ms`, within `LOOKBACK_MS`."""
    for start in (time_ms - NEAR_MS, time_ms - LOOKBACK_MS):
        batch = store.track(terminal, start, time_ms + 1)
        valid = np.flatnonzero(batch.valid())
        if len(valid):
            last = int(valid[-1])
            return float(batch.lon[last]), float(batch.lat[last])
    return None


def _given(details: dict[str, Any]) -> tuple[float, float] | None:
    lon, lat = details.get("lon"), details.get("lat")
    if isinstance(lon, int | float) and isinstance(lat, int | float):
        return float(lon), float(lat)
    return None


def alert_places(store: Store, alerts: Sequence[StoredAlert]) -> list[Place]:
    """The place of each alert (None when the device had no fix then, or at sea)."""
    found: dict[tuple[str, int], tuple[float, float] | None] = {}
    where: list[tuple[float, float] | None] = []
    for stored in alerts:
        alert = stored.alert
        given = _given(alert.details)
        if given is None:
            key = (alert.device_id, alert.time_ms)
            if key not in found:
                found[key] = alert_position(store, alert.device_id, alert.time_ms)
            given = found[key]
        where.append(given)
    nan = float("nan")
    lon = [p[0] if p else nan for p in where]
    lat = [p[1] if p else nan for p in where]
    return places(lon, lat)
