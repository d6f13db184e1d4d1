"""Vehicle incidents: the union of devices' episodes, decided once every device has reported."""

from __future__ import annotations

import numpy as np

from alerts.incidents import IncidentMerger

KEY = (0, "overspeed", "")
DEVICES = {0: [0, 1]}


def test_overlapping_episodes_of_two_devices_are_one_incident_started_by_the_first() -> None:
    m = IncidentMerger()
    m.start(KEY, 0, 100)
    m.end(KEY, 0, 300)
    m.start(KEY, 1, 200)
    decided = m.resolve(DEVICES, np.array([400.0, 400.0]), float("-inf"))
    assert [(s.device, s.time_ms) for s in decided] == [(0, 100)]


def test_an_incident_must_end_before_a_second_one_can_start() -> None:
    m = IncidentMerger()
    m.start(KEY, 0, 100)
    m.end(KEY, 0, 150)
    m.start(KEY, 1, 200)
    decided = m.resolve(DEVICES, np.array([400.0, 400.0]), float("-inf"))
    assert [(s.device, s.time_ms) for s in decided] == [(0, 100), (1, 200)]


def test_a_start_waits_until_every_other_device_has_reported_past_it() -> None:
    m = IncidentMerger()
    m.start(KEY, 1, 200)
    assert m.resolve(DEVICES, np.array([150.0, 400.0]), float("-inf")) == []
    # Device 0 turns out to have been in the condition since 100: no new incident at 200.
    m.start(KEY, 0, 100)
    decided = m.resolve(DEVICES, np.array([400.0, 400.0]), float("-inf"))
    assert [(s.device, s.time_ms) for s in decided] == [(0, 100)]


def test_the_end_of_input_decides_what_is_still_waiting() -> None:
    m = IncidentMerger()
    m.start(KEY, 1, 200)
    decided = m.resolve(DEVICES, np.array([-1.0, 400.0]), float("inf"))
    assert [(s.device, s.time_ms) for s in decided] == [(1, 200)]
