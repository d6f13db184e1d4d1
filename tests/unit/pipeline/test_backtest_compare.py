"""What a backtest reports: the same incident kept or moved, the rest added or removed."""

from __future__ import annotations

from alerts.model import Alert, AlertType
from pipeline.backtest import compare, report

H = 3_600_000
T0 = 1_709_280_000_000


def alert(kind: AlertType, vehicle: str, hours: float, fence: str | None = None) -> Alert:
    return Alert(kind, f"D-{vehicle}", vehicle, T0 + int(hours * H), fence)


def test_same_time_is_kept_nearby_is_moved_the_rest_added_or_removed() -> None:
    fired = [
        alert(AlertType.OFFLINE, "V1", 0), alert(AlertType.OFFLINE, "V2", 0),
        alert(AlertType.OFFLINE, "V3", 0), alert(AlertType.HOTSPOT_DWELL, "V1", 1, "pawn"),
    ]  # fmt: skip
    new = [
        alert(AlertType.OFFLINE, "V1", 0), alert(AlertType.OFFLINE, "V2", -1),
        alert(AlertType.OFFLINE, "V4", 2), alert(AlertType.HOTSPOT_DWELL, "V1", 1, "market"),
    ]  # fmt: skip
    diffs = {d.type: d for d in compare(fired, new)}
    offline = diffs["offline"]
    assert offline.counts() == {
        "fired": 3, "new": 3, "kept": 1, "moved": 1, "added": 1, "removed": 1
    }  # fmt: skip
    assert [(o.vehicle_id, n.time_ms - o.time_ms) for o, n in offline.moved] == [("V2", -H)]
    assert [a.vehicle_id for a in offline.added] == ["V4"]
    assert [a.vehicle_id for a in offline.removed] == ["V3"]
    dwell = diffs["hotspot_dwell"]  # another fence is another incident
    assert [a.fence_id for a in dwell.added] == ["market"]
    assert [a.fence_id for a in dwell.removed] == ["pawn"]


def test_the_tolerance_bounds_a_move_and_gateway_alerts_are_left_out() -> None:
    fired = [alert(AlertType.OFFLINE, "V1", 0), alert(AlertType.DEVICE_CONFLICT, "V1", 0)]
    new = [alert(AlertType.OFFLINE, "V1", 3)]
    [d] = compare(fired, new, tolerance_ms=2 * H)
    assert (len(d.added), len(d.removed), len(d.moved)) == (1, 1, 0)
    [d] = compare(fired, new, tolerance_ms=3 * H)
    assert len(d.moved) == 1
    document = report(compare(fired, new), T0, T0 + 24 * H, 10)
    assert document["by_type"]["offline"]["moved"] == 1 and document["positions"] == 10
    assert document["moved"][0]["shift_s"] == 3 * 3600
    assert document["since"] == "2024-03-01T16:00:00+08:00"
