"""Risk scores: weighted, fading with age, raised by combinations, explained by reasons."""

from __future__ import annotations

from alerts.model import Alert, AlertType
from alerts.risk import DAY_MS, score_vehicles

T = 1_709_251_200_000


def test_a_power_cut_at_a_pawn_spot_outranks_either_alone_and_names_the_combination() -> None:
    alerts = [
        Alert(AlertType.POWER_CUT, "a", "V1", T),
        Alert(AlertType.HOTSPOT_DWELL, "a", "V1", T + 3_600_000, "pawn"),
        Alert(AlertType.POWER_CUT, "b", "V2", T),
        Alert(AlertType.HOTSPOT_DWELL, "c", "V3", T, "pawn"),
    ]
    ranked = score_vehicles(alerts, T + 3_600_000)
    assert [r.vehicle_id for r in ranked] == ["V1", "V2", "V3"]
    assert 0 < ranked[-1].score < ranked[0].score <= 100
    assert "removal and pawn spot" in [reason.what for reason in ranked[0].reasons]


def test_old_incidents_fade_and_future_ones_are_not_counted() -> None:
    alerts = [Alert(AlertType.DEVICE_SEPARATION, "a", "V1", T)]
    fresh = score_vehicles(alerts, T)[0].score
    faded = score_vehicles(alerts, T + 9 * DAY_MS)[0].score
    assert fresh > faded > 0
    assert score_vehicles(alerts, T - 1) == []
