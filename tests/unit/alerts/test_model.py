"""The alert record as contracts section 3 prints it."""

from __future__ import annotations

from alerts.model import Alert, AlertType, format_time


def test_alert_json_has_the_contract_fields_and_local_time_with_offset() -> None:
    alert = Alert(AlertType.HOTSPOT_DWELL, "013900000001", "V1", 1_709_274_600_000, "pawn-17")
    assert alert.to_json() == {
        "type": "hotspot_dwell",
        "device_id": "013900000001",
        "vehicle_id": "V1",
        "time": "2024-03-01T14:30:00+08:00",
        "fence_id": "pawn-17",
        "severity": "high",
        "details": {},
    }


def test_times_keep_milliseconds_only_when_present() -> None:
    assert format_time(1_709_274_600_250) == "2024-03-01T14:30:00.250+08:00"
