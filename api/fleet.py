"""Where each car is and what it is doing, for the map and the portfolio figures.

Pure: the caller reads the devices, their newest fixes and the unresolved alerts from the store
and hands them in with `now_ms`; one function decides each car's state so the map's colours and
the figures' counts can never disagree.

A car is a `vehicle_id` with its bound devices (a device bound to no car stands for itself,
with `vehicle_id` null). Its position is the newest valid fix of any of its devices. Its state,
the first that holds:

- `alarm`: an unresolved alert of severity high or critical, or an alarm bit a person must see
  (emergency, main power cut, GNSS antenna cut) in the newest fix of one of its devices;
- `offline`: no device heard from (any message, or a fix received) within `offline_after_ms`;
- `moving`: its newest fix is at least `MOVING_KMH`;
- `parked`: otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts.lifecycle import AlertState, StoredAlert
from positions import PositionBatch
from store import Device

STATES = ("moving", "parked", "offline", "alarm")
MOVING_KMH = 5.0
OFFLINE_AFTER_MS = 600_000  # ten minutes: 20 missed reports at the normal 30 s interval
ALARM_BITS = (1 << 0) | (1 << 5) | (1 << 8)  # emergency, GNSS antenna cut, main power cut
ALARM_SEVERITIES = frozenset({"high", "critical"})


@dataclass(slots=True)
class Car:
    """One car's snapshot: where it was last seen and its state."""

    vehicle_id: str | None
    terminals: list[str] = field(default_factory=list)
    lon: float | None = None
    lat: float | None = None
    time_ms: int | None = None
    speed_kmh: float = 0.0
    heard_ms: int | None = None
    alarm_word: int = 0
    open_alerts: int = 0
    severe_alerts: int = 0
    state: str = "offline"

    @property
    def key(self) -> str:
        return self.vehicle_id if self.vehicle_id is not None else f"device:{self.terminals[0]}"


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def cars(
    devices: Sequence[Device],
    latest: PositionBatch,
    unresolved: Iterable[StoredAlert],
    now_ms: int,
    offline_after_ms: int = OFFLINE_AFTER_MS,
) -> list[Car]:
    """Every car of `devices`, by key. `latest` holds the newest valid fixes with device
    indexes into `devices` (as `Store.latest(terminals)` returns them); `unresolved` the open
    and acknowledged alerts."""
    by_key: dict[str, Car] = {}
    rows: list[Car] = []
    for device in devices:
        key = device.vehicle_id if device.vehicle_id is not None else f"device:{device.terminal}"
        car = by_key.get(key)
        if car is None:
            car = by_key[key] = Car(device.vehicle_id)
        car.terminals.append(device.terminal)
        car.heard_ms = _max(car.heard_ms, device.last_seen_ms)
        rows.append(car)
    for i, index in enumerate(latest.device.tolist()):
        car = rows[int(index)]
        fix_ms = int(latest.time_ms[i])
        car.heard_ms = _max(car.heard_ms, int(latest.recv_ms[i]))
        car.alarm_word |= int(latest.alarm[i])
        if car.time_ms is None or fix_ms > car.time_ms:
            car.time_ms = fix_ms
            car.lon, car.lat = float(latest.lon[i]), float(latest.lat[i])
            car.speed_kmh = float(latest.speed_kmh[i])
    for alert in unresolved:
        if alert.state is AlertState.RESOLVED:
            continue
        found = by_key.get(alert.alert.vehicle_id) or by_key.get(f"device:{alert.alert.device_id}")
        if found is None:
            continue
        found.open_alerts += 1
        if alert.alert.severity in ALARM_SEVERITIES:
            found.severe_alerts += 1
    for car in by_key.values():
        car.state = state_of(car, now_ms, offline_after_ms)
    return [by_key[k] for k in sorted(by_key)]


def state_of(car: Car, now_ms: int, offline_after_ms: int = OFFLINE_AFTER_MS) -> str:
    if car.severe_alerts or car.alarm_word & ALARM_BITS:
        return "alarm"
    if car.heard_ms is None or now_ms - car.heard_ms > offline_after_ms:
        return "offline"
    if car.speed_kmh >= MOVING_KMH:
        return "moving"
    return "parked"


def state_counts(snapshot: Iterable[Car]) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for car in snapshot:
        counts[car.state] += 1
    return counts


def alerts_by_vehicle(unresolved: Iterable[StoredAlert]) -> dict[str, list[StoredAlert]]:
    grouped: dict[str, list[StoredAlert]] = defaultdict(list)
    for alert in unresolved:
        grouped[alert.alert.vehicle_id].append(alert)
    return grouped


def mask_name(name: str) -> str:
    """A borrower's name for screens a collector may show: the first character of each word,
    the rest starred (`张三丰` → `张**`, `John Smith` → `J*** S****`)."""
    return " ".join(w[:1] + "*" * (len(w) - 1) for w in name.split(" "))


def feature(car: Car, lon: float, lat: float) -> dict[str, Any]:
    """The car as a GeoJSON point feature for the map (coordinates already in the map's crs)."""
    return {
        "type": "Feature",
        "id": car.key,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "key": car.key,
            "vehicle_id": car.vehicle_id,
            "terminals": car.terminals,
            "state": car.state,
            "speed_kmh": round(car.speed_kmh, 1),
            "time_ms": car.time_ms,
            "open_alerts": car.open_alerts,
        },
    }


RISK_LEVELS = ("low", "medium", "high", "critical")
RISK_BANDS = ((80, "critical"), (60, "high"), (30, "medium"), (0, "low"))


def risk_level(score: int) -> str:
    """The band of a 0-100 risk score (`alerts.risk`): low < 30 <= medium < 60 <= high < 80 <=
    critical."""
    return next(level for floor, level in RISK_BANDS if score >= floor)
