"""The alert record of contracts section 3: names, severities and its JSON line."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any


class AlertType(enum.StrEnum):
    """Alert names; the core ones are fixed by the contract, the rest come from the catalogue."""

    GEOFENCE_ENTER = "geofence_enter"
    GEOFENCE_EXIT = "geofence_exit"
    LEAVE_ALLOWED_AREA = "leave_allowed_area"
    HOTSPOT_DWELL = "hotspot_dwell"
    OFFLINE = "offline"
    POWER_CUT = "power_cut"
    ANTENNA_CUT = "antenna_cut"
    DEVICE_SEPARATION = "device_separation"
    GPS_JUMP = "gps_jump"
    OVERSPEED = "overspeed"
    # Beyond the contract (docs/rules.md).
    ALL_DEVICES_OFFLINE = "all_devices_offline"
    PARTIAL_OFFLINE = "partial_offline"
    LONG_STAY = "long_stay"
    HOTSPOT_REPEAT = "hotspot_repeat"
    TOW = "tow"
    FROZEN_POSITION = "frozen_position"
    HOTSPOT_DWELL_CRITICAL = "hotspot_dwell_critical"
    NOT_HOME = "not_home"
    NIGHT_TRIPS = "night_trips"
    GATHERING = "gathering"
    # Raised by the gateway, not the engine: two connections fighting over one terminal.
    DEVICE_CONFLICT = "device_conflict"


SEVERITY: dict[AlertType, str] = {
    AlertType.GEOFENCE_ENTER: "low",
    AlertType.GEOFENCE_EXIT: "low",
    AlertType.LEAVE_ALLOWED_AREA: "high",
    AlertType.HOTSPOT_DWELL: "high",
    AlertType.OFFLINE: "medium",
    AlertType.POWER_CUT: "critical",
    AlertType.ANTENNA_CUT: "high",
    AlertType.DEVICE_SEPARATION: "critical",
    AlertType.GPS_JUMP: "low",
    AlertType.OVERSPEED: "low",
    AlertType.ALL_DEVICES_OFFLINE: "high",
    AlertType.PARTIAL_OFFLINE: "high",
    AlertType.LONG_STAY: "medium",
    AlertType.HOTSPOT_REPEAT: "high",
    AlertType.TOW: "high",
    AlertType.FROZEN_POSITION: "medium",
    AlertType.HOTSPOT_DWELL_CRITICAL: "critical",
    AlertType.NOT_HOME: "medium",
    AlertType.NIGHT_TRIPS: "low",
    AlertType.GATHERING: "high",
    AlertType.DEVICE_CONFLICT: "high",
}

# Alerts shown in the device's local time: trackers and their users live in GMT+8.
DEFAULT_UTC_OFFSET = timezone(timedelta(hours=8))


def format_time(time_ms: int, tz: timezone = DEFAULT_UTC_OFFSET) -> str:
    """ISO 8601 with offset; milliseconds only when present."""
    stamp = datetime.fromtimestamp(time_ms / 1000.0, UTC).astimezone(tz)
    if time_ms % 1000:
        return stamp.isoformat(timespec="milliseconds")
    return stamp.isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Alert:
    """One incident's alert; `time_ms` is the data time its condition became true."""

    type: AlertType
    device_id: str
    vehicle_id: str
    time_ms: int
    fence_id: str | None = None
    severity: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.severity:
            object.__setattr__(self, "severity", SEVERITY[self.type])

    def sort_key(self) -> tuple[int, str, str, str]:
        return (self.time_ms, self.vehicle_id, self.type.value, self.fence_id or "")

    def to_json(self, tz: timezone = DEFAULT_UTC_OFFSET) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "device_id": self.device_id,
            "vehicle_id": self.vehicle_id,
            "time": format_time(self.time_ms, tz),
            "fence_id": self.fence_id,
            "severity": self.severity,
            "details": self.details,
        }


# An incident: type, vehicle, device (terminal), fence ('' for none), data time in ms. The store
# keeps one alert per incident: a repeat offer of the same incident is the same alert.
IncidentKey = tuple[str, str, str, str, int]


def incident_key(alert: Alert) -> IncidentKey:
    return (
        alert.type.value,
        alert.vehicle_id,
        alert.device_id,
        alert.fence_id or "",
        alert.time_ms,
    )


def first_of_each_incident(alerts: Sequence[Alert]) -> list[Alert]:
    """The alerts in offered order, keeping only the first of each incident key."""
    seen: set[IncidentKey] = set()
    kept: list[Alert] = []
    for alert in alerts:
        key = incident_key(alert)
        if key not in seen:
            seen.add(key)
            kept.append(alert)
    return kept
