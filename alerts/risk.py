"""A vehicle's 0-100 risk score, explained by the incidents behind it.

Each alert contributes its type's weight, halved every `half_life_ms` of age, so old incidents
fade; combinations that mean more together (a removal near a pawn shop, a departure from the
province followed by silence) add a bonus. The sum saturates smoothly into 0-100, so a car at 87
can be read off its reasons: the contributions, largest first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from alerts.model import Alert, AlertType, format_time

DAY_MS = 86_400_000

WEIGHTS: dict[AlertType, float] = {
    AlertType.POWER_CUT: 40.0,
    AlertType.DEVICE_SEPARATION: 40.0,
    AlertType.HOTSPOT_DWELL: 35.0,
    AlertType.HOTSPOT_DWELL_CRITICAL: 45.0,  # a day at a pawn shop: the car is likely pledged
    AlertType.TOW: 35.0,  # moved without its ignition: loaded on a truck
    AlertType.FROZEN_POSITION: 25.0,  # a tracker replaying one position: tampering
    AlertType.DEVICE_CONFLICT: 25.0,  # a cloned tracker or a stolen identity: tampering
    AlertType.LEAVE_ALLOWED_AREA: 30.0,
    AlertType.PARTIAL_OFFLINE: 30.0,
    AlertType.ALL_DEVICES_OFFLINE: 30.0,
    AlertType.ANTENNA_CUT: 25.0,
    AlertType.OFFLINE: 15.0,
    AlertType.LONG_STAY: 15.0,
    AlertType.HOTSPOT_REPEAT: 30.0,
    AlertType.GEOFENCE_ENTER: 5.0,
    AlertType.GEOFENCE_EXIT: 5.0,
    AlertType.OVERSPEED: 5.0,
    AlertType.GPS_JUMP: 3.0,
    AlertType.NOT_HOME: 15.0,  # nights away from home: the car may have changed hands
    AlertType.NIGHT_TRIPS: 5.0,
    AlertType.GATHERING: 20.0,  # parked where cars of other borrowers gather
}

# (first type, second type, bonus, why): both within the combination window.
COMBINATIONS: tuple[tuple[AlertType, AlertType, float, str], ...] = (
    (AlertType.POWER_CUT, AlertType.HOTSPOT_DWELL, 30.0, "removal and pawn spot"),
    (AlertType.PARTIAL_OFFLINE, AlertType.HOTSPOT_DWELL, 30.0, "removal and pawn spot"),
    (AlertType.DEVICE_SEPARATION, AlertType.HOTSPOT_DWELL, 30.0, "pawn spot and separation"),
    (AlertType.LEAVE_ALLOWED_AREA, AlertType.ALL_DEVICES_OFFLINE, 25.0, "out of area, then silent"),
    (AlertType.LEAVE_ALLOWED_AREA, AlertType.OFFLINE, 15.0, "out of area, then offline"),
)


@dataclass(frozen=True, slots=True)
class Reason:
    what: str
    time_ms: int
    points: float

    def to_json(self) -> dict[str, object]:
        return {
            "reason": self.what,
            "time": format_time(self.time_ms),
            "points": round(self.points, 1),
        }


@dataclass(frozen=True, slots=True)
class VehicleRisk:
    vehicle_id: str
    score: int
    reasons: tuple[Reason, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "vehicle_id": self.vehicle_id,
            "score": self.score,
            "reasons": [r.to_json() for r in self.reasons],
        }


@dataclass(frozen=True, slots=True)
class RiskSettings:
    half_life_ms: int = 3 * DAY_MS
    combination_window_ms: int = 2 * DAY_MS
    saturation: float = 60.0  # points at which the score reaches 1 - 1/e of 100


def score_vehicles(
    alerts: Iterable[Alert], now_ms: int, settings: RiskSettings | None = None
) -> list[VehicleRisk]:
    """Scores every vehicle with at least one alert at or before `now_ms`, highest first."""
    s = settings or RiskSettings()
    by_vehicle: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        if alert.time_ms <= now_ms:
            by_vehicle[alert.vehicle_id].append(alert)
    scored = [_score(vehicle, items, now_ms, s) for vehicle, items in by_vehicle.items()]
    scored.sort(key=lambda r: (-r.score, r.vehicle_id))
    return scored


def _decay(age_ms: int, s: RiskSettings) -> float:
    return float(0.5 ** (max(age_ms, 0) / s.half_life_ms))


def _score(vehicle: str, items: list[Alert], now_ms: int, s: RiskSettings) -> VehicleRisk:
    reasons = [
        Reason(a.type.value, a.time_ms, WEIGHTS.get(a.type, 5.0) * _decay(now_ms - a.time_ms, s))
        for a in items
    ]
    for first, second, bonus, why in COMBINATIONS:
        pairs = [
            (a, b)
            for a in items
            if a.type is first
            for b in items
            if b.type is second and abs(a.time_ms - b.time_ms) <= s.combination_window_ms
        ]
        if pairs:
            a, b = max(pairs, key=lambda p: max(p[0].time_ms, p[1].time_ms))
            latest = max(a.time_ms, b.time_ms)
            reasons.append(Reason(why, latest, bonus * _decay(now_ms - latest, s)))
    total = sum(r.points for r in reasons)
    score = round(100.0 * (1.0 - math.exp(-total / s.saturation)))
    reasons.sort(key=lambda r: (-r.points, r.time_ms))
    return VehicleRisk(vehicle, score, tuple(r for r in reasons if r.points >= 0.5))
