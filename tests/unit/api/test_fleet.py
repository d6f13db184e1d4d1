"""Car states, risk bands and masked names: what the map colours and the figures count."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.lifecycle import AlertState, opened, transition
from alerts.model import Alert, AlertType
from api.fleet import Car, cars, mask_name, risk_level, state_counts, state_of
from positions import PositionBatch
from store import Device

NOW = 1_719_720_000_000


def latest(rows: list[tuple[int, float, int, float, int]]) -> PositionBatch:
    """(device index, lon, fix time, speed, alarm) rows."""
    return PositionBatch.from_columns(
        {
            "device": np.array([r[0] for r in rows], np.int32),
            "lon": np.array([r[1] for r in rows]),
            "lat": np.full(len(rows), 30.0),
            "time_ms": np.array([r[2] for r in rows], np.int64),
            "recv_ms": np.array([r[2] + 500 for r in rows], np.int64),
            "speed_kmh": np.array([r[3] for r in rows]),
            "alarm": np.array([r[4] for r in rows], np.uint32),
        }
    )


def test_a_car_takes_the_newest_fix_of_its_trackers_and_an_unbound_tracker_stands_alone() -> None:
    devices = [Device("1", vehicle_id="V1"), Device("2", vehicle_id="V1"), Device("3")]
    batch = latest(
        [
            (0, 120.0, NOW - 50_000, 0.0, 0),
            (1, 121.0, NOW - 10_000, 60.0, 0),
            (2, 122.0, NOW, 0.0, 0),
        ]
    )
    found = {c.key: c for c in cars(devices, batch, [], NOW)}
    assert set(found) == {"V1", "device:3"}
    assert found["V1"].terminals == ["1", "2"] and found["V1"].lon == 121.0
    assert found["V1"].state == "moving" and found["device:3"].state == "parked"


def test_states_in_order_of_precedence() -> None:
    assert state_of(Car("V", severe_alerts=1, heard_ms=None), NOW) == "alarm"
    assert state_of(Car("V", alarm_word=1 << 8, heard_ms=NOW), NOW) == "alarm"  # power cut
    assert state_of(Car("V", alarm_word=1 << 1, heard_ms=NOW, speed_kmh=90), NOW) == "moving"
    assert state_of(Car("V", heard_ms=NOW - 601_000, speed_kmh=90), NOW) == "offline"
    assert state_of(Car("V", heard_ms=None), NOW) == "offline"
    assert state_of(Car("V", heard_ms=NOW, speed_kmh=4.9), NOW) == "parked"
    assert state_of(Car("V", heard_ms=NOW - 601_000), NOW, offline_after_ms=700_000) == "parked"


def test_only_unresolved_high_or_critical_alerts_make_an_alarm() -> None:
    devices = [Device("1", vehicle_id="V1", last_seen_ms=NOW)]
    batch = latest([(0, 120.0, NOW, 0.0, 0)])
    low = opened(1, Alert(AlertType.OVERSPEED, "1", "V1", NOW), NOW)
    high = opened(2, Alert(AlertType.TOW, "1", "V1", NOW), NOW)
    done = transition(high, AlertState.RESOLVED, "li", None, NOW)
    assert cars(devices, batch, [low, done], NOW)[0].state == "parked"
    (car,) = cars(devices, batch, [low, high], NOW)
    assert (car.state, car.open_alerts, car.severe_alerts) == ("alarm", 2, 1)
    assert state_counts([car]) == {"moving": 0, "parked": 0, "offline": 0, "alarm": 1}


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0, "low"),
        (29, "low"),
        (30, "medium"),
        (59, "medium"),
        (60, "high"),
        (79, "high"),
        (80, "critical"),
        (100, "critical"),
    ],
)
def test_risk_bands(score: int, level: str) -> None:
    assert risk_level(score) == level


def test_names_are_masked_but_keep_their_first_letters() -> None:
    assert mask_name("张三丰") == "张**"
    assert mask_name("John Smith") == "J*** S****"
    assert mask_name("王") == "王"
