"""The alert lifecycle: allowed moves, who and when, clear refusals, and the API's JSON."""

from __future__ import annotations

import pytest

from alerts.lifecycle import (
    ALLOWED,
    AlertState,
    StoredAlert,
    TransitionError,
    assign,
    can_move,
    opened,
    transition,
)
from alerts.model import Alert, AlertType

T = 1_709_274_600_000  # 2024-03-01T06:30:00Z = 14:30 +08:00
ALERT = Alert(AlertType.HOTSPOT_DWELL, "013900000001", "V1", T, "pawn-17")


def fresh() -> StoredAlert:
    return opened(7, ALERT, T + 60_000)


def test_the_allowed_moves_are_exactly_acknowledge_then_resolve_or_resolve_directly() -> None:
    assert {(a.value, b.value) for a, b in ALLOWED} == {
        ("open", "acknowledged"),
        ("open", "resolved"),
        ("acknowledged", "resolved"),
    }
    for current in AlertState:
        for target in AlertState:
            assert can_move(current, target) == ((current, target) in ALLOWED)


def test_acknowledging_records_the_actor_the_time_and_the_note() -> None:
    acked = transition(fresh(), AlertState.ACKNOWLEDGED, "li", "on it", T + 120_000)
    assert acked.state is AlertState.ACKNOWLEDGED
    assert (acked.acknowledged_by, acked.acknowledged_ms) == ("li", T + 120_000)
    assert (acked.note, acked.updated_ms, acked.opened_ms) == ("on it", T + 120_000, T + 60_000)
    assert (acked.resolved_by, acked.resolved_ms) == (None, None)


def test_resolving_keeps_the_acknowledgement_and_the_last_note_when_none_is_given() -> None:
    acked = transition(fresh(), AlertState.ACKNOWLEDGED, "li", "on it", T + 1)
    done = transition(acked, AlertState.RESOLVED, "wang", None, T + 2)
    assert (done.acknowledged_by, done.resolved_by, done.note) == ("li", "wang", "on it")
    direct = transition(fresh(), AlertState.RESOLVED, "wang", "false alarm", T + 3)
    assert (direct.acknowledged_by, direct.resolved_ms, direct.note) == (None, T + 3, "false alarm")


@pytest.mark.parametrize(
    ("path", "target", "message"),
    [
        ([AlertState.ACKNOWLEDGED], AlertState.ACKNOWLEDGED, "alert 7 is already acknowledged"),
        (
            [AlertState.RESOLVED],
            AlertState.RESOLVED,
            "alert 7 is resolved: a resolved alert is final",
        ),
        ([AlertState.RESOLVED], AlertState.ACKNOWLEDGED, "resolved alert is final"),
        ([], AlertState.OPEN, "alert 7 is already open"),
        ([AlertState.ACKNOWLEDGED], AlertState.OPEN, "cannot be reopened"),
    ],
)
def test_refused_moves_say_why(path: list[AlertState], target: AlertState, message: str) -> None:
    stored = fresh()
    for step in path:
        stored = transition(stored, step, "li", None, T)
    with pytest.raises(TransitionError, match=message) as caught:
        transition(stored, target, "wang", None, T + 1)
    assert (caught.value.alert_id, caught.value.target) == (7, target)


def test_json_is_the_contract_alert_plus_id_state_and_lifecycle_fields() -> None:
    acked = transition(fresh(), AlertState.ACKNOWLEDGED, "li", "on it", T + 120_500)
    assert acked.to_json() == {
        "id": 7,
        "type": "hotspot_dwell",
        "device_id": "013900000001",
        "vehicle_id": "V1",
        "time": "2024-03-01T14:30:00+08:00",
        "fence_id": "pawn-17",
        "severity": "high",
        "details": {},
        "state": "acknowledged",
        "opened_at": "2024-03-01T14:31:00+08:00",
        "updated_at": "2024-03-01T14:32:00.500+08:00",
        "acknowledged_by": "li",
        "acknowledged_at": "2024-03-01T14:32:00.500+08:00",
        "resolved_by": None,
        "resolved_at": None,
        "note": "on it",
        "org": None,  # the store gives the owning unit
        "assignee": None,
        "assigned_by": None,
        "assigned_at": None,
    }


def test_an_alert_is_assigned_without_changing_its_state_until_it_is_resolved() -> None:
    acked = transition(fresh(), AlertState.ACKNOWLEDGED, "li", None, T + 1000)
    handed = assign(acked, "collector-7", "wang", "visit tomorrow", T + 2000)
    assert handed.state is AlertState.ACKNOWLEDGED
    out = handed.to_json()
    assert (out["assignee"], out["assigned_by"], out["note"]) == (
        "collector-7",
        "wang",
        "visit tomorrow",
    )
    assert out["assigned_at"] == out["updated_at"] == "2024-03-01T14:30:02+08:00"
    cleared = assign(handed, None, "wang", None, T + 3000)
    assert cleared.assignee is None and cleared.note == "visit tomorrow"
    resolved = transition(cleared, AlertState.RESOLVED, "li", None, T + 4000)
    with pytest.raises(TransitionError, match="resolved alert is final"):
        assign(resolved, "collector-7", "wang", None, T + 5000)
