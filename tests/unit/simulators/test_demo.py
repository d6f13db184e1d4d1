"""The demo fleet script: deterministic, coherent bindings and fences, and every injected incident
alerting in time under the demo rules when its reports run through the real engine."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from alerts.model import Alert, AlertType
from geofence import FenceKind, load_fences
from ingest.jt808 import Jt808Connection, MessageReceived, Role
from ingest.jt808.ids import Alarm
from ingest.jt808.messages import LocationReport, Register
from pipeline.engine import Engine
from pipeline.fleet import Fleet, Vehicle
from pipeline.thresholds import Thresholds
from positions import DeviceIndex, PositionBatch
from simulators.demo import (
    JUMP_LAT_E6,
    DemoScript,
    ScriptedDevice,
    build_demo,
    demo_fences,
    demo_rules,
    make_devices,
)
from simulators.demo_city import METRO_ID, ZONE_ID
from simulators.device import Device, Kind

T0_MS = 1_735_689_600_000  # 2025-01-01 08:00 +08:00
PLAY_MS = 180_000  # the script plays within three minutes
CHUNK_MS = 5_000  # the engine sees data and the clock this often, as the live detector does


def sample_reports(script: DemoScript, until_ms: int) -> tuple[PositionBatch, DeviceIndex]:
    """Every report each unit would send up to `until_ms`, in time order: the device's own
    report contents on its reporting habits (moving or parked interval, an ignition change at
    once, nothing after it goes silent)."""
    index = DeviceIndex()
    rows: list[tuple[int, int, float, float, float, int, int, int]] = []
    for device in make_devices(script):
        tracker = device.tracker
        end_ms = min(until_ms, tracker.silent_ms or until_ms)
        habits = tracker.habits
        next_ms, last_acc = script.t0_ms, None
        for now in range(script.t0_ms, end_ms, 1000):
            acc = device.motion.fix_at(now).acc_on
            if tracker.kind is Kind.WIRED and last_acc is not None and acc != last_acc:
                next_ms = now
            if now < next_ms:
                continue
            r = device.report_at(now)
            rows.append(
                (index.index_of(tracker.terminal), now, r.lon_e6 / 1e6, r.lat_e6 / 1e6,
                 r.speed_dkmh / 10, r.course, r.alarm, r.status)
            )  # fmt: skip
            last_acc = acc
            moving = tracker.kind is Kind.WIRED and acc
            next_ms = now + 1000 * (
                habits.moving_interval_s if moving else habits.parked_interval_s
            )
    rows.sort(key=lambda row: row[1])
    cols = list(zip(*rows, strict=True))
    names = ("device", "time_ms", "lon", "lat", "speed_kmh", "course", "alarm", "status")
    batch = PositionBatch.from_columns(dict(zip(names, cols, strict=True)))
    return PositionBatch(**{**batch.columns(), "recv_ms": batch.time_ms.copy()}), index


def run_engine(script: DemoScript, until_ms: int) -> list[tuple[int, Alert]]:
    """(wall time fired, alert) from the engine fed like the live detector: one per incident,
    whether the clock or the data reaches a deadline first."""
    batch, index = sample_reports(script, until_ms)
    fleet = Fleet(
        tuple(Vehicle(c.vehicle_id, tuple(t.terminal for t in c.trackers)) for c in script.cars)
    )
    engine = Engine(
        devices=index, fleet=fleet, rules=demo_rules(), fences=load_fences(demo_fences(script))
    )
    fired: list[tuple[int, Alert]] = []
    for start in range(script.t0_ms, until_ms, CHUNK_MS):
        now = start + CHUNK_MS
        rows = np.flatnonzero((batch.time_ms >= start) & (batch.time_ms < now))
        alerts = engine.process(batch.take(rows)) + engine.advance(now)
        fired += [(now, a) for a in alerts]
    return fired


@pytest.fixture(scope="module")
def script() -> DemoScript:
    return build_demo(seed=7, cars=20, t0_ms=T0_MS)


@pytest.fixture(scope="module")
def played(script: DemoScript) -> list[tuple[int, Alert]]:
    return run_engine(script, T0_MS + 240_000)


# -- determinism ---------------------------------------------------------------------------


def _fingerprint(s: DemoScript) -> tuple[object, ...]:
    batch, index = sample_reports(s, s.t0_ms + 60_000)
    terminals = [index.terminal(int(i)) for i in batch.device]
    return (
        [(c.vehicle_id, c.plate, c.role) for c in s.cars],
        s.bindings(),
        s.incidents,
        demo_fences(s),
        terminals,
        batch.lon.tolist(),
        batch.lat.tolist(),
        batch.alarm.tolist(),
    )


def test_the_same_seed_gives_the_same_fleet_places_incidents_and_reports() -> None:
    assert _fingerprint(build_demo(3, 20, T0_MS)) == _fingerprint(build_demo(3, 20, T0_MS))


def test_another_seed_gives_other_cars_and_places() -> None:
    one, other = build_demo(3, 20, T0_MS), build_demo(4, 20, T0_MS)
    assert [c.vehicle_id for c in one.cars] != [c.vehicle_id for c in other.cars]
    assert _fingerprint(one)[5] != _fingerprint(other)[5]


def test_the_start_time_moves_the_script_but_not_the_fleet() -> None:
    early, late = build_demo(3, 20, T0_MS), build_demo(3, 20, T0_MS + 3_600_000)
    assert early.bindings() == late.bindings()
    assert demo_fences(early) == demo_fences(late)
    shifted = [(i.type, i.onset_ms - late.t0_ms) for i in late.incidents]
    assert shifted == [(i.type, i.onset_ms - early.t0_ms) for i in early.incidents]


# -- cars, trackers and bindings -------------------------------------------------------------


def test_twenty_cars_carry_about_thirty_trackers_wired_first_and_some_hidden_ones(
    script: DemoScript,
) -> None:
    assert len(script.cars) == 20
    assert 25 <= len(script.trackers) <= 35
    for car in script.cars:
        assert car.trackers[0].kind is Kind.WIRED
        assert [t.kind for t in car.trackers[1:]] in ([], [Kind.WIRELESS])
    assert sum(len(c.trackers) == 2 for c in script.cars) >= 5


def test_every_tracker_is_bound_to_its_own_car_and_ids_are_unique(script: DemoScript) -> None:
    bindings = script.bindings()
    assert len(bindings) == len(script.trackers)
    for car in script.cars:
        assert all(bindings[t.terminal] == car.vehicle_id for t in car.trackers)
        assert re.fullmatch(r"VIN-[A-HJ-NPR-Z0-9]{17}", car.vehicle_id)
    assert all(re.fullmatch(r"\d{12}", terminal) for terminal in bindings)
    assert len({c.vehicle_id for c in script.cars}) == len(script.cars)
    assert len({c.plate for c in script.cars}) == len(script.cars)


def test_trackers_register_with_their_cars_plate_in_hangzhou(script: DemoScript) -> None:
    for car in script.cars:
        for tracker in car.trackers:
            reg = tracker.registration
            assert isinstance(reg, Register)
            assert (reg.province_id, reg.plate) == (33, car.plate)
            assert tracker.terminal.endswith(reg.terminal_id)


def test_positions_are_around_hangzhou_but_the_one_gps_jump(script: DemoScript) -> None:
    batch, _ = sample_reports(script, T0_MS + 60_000)
    near = (batch.lon > 119.7) & (batch.lon < 120.7) & (batch.lat > 29.9) & (batch.lat < 30.5)
    assert int(np.count_nonzero(~near)) == 1


def test_incidents_name_cars_and_trackers_of_the_fleet(script: DemoScript) -> None:
    bindings = script.bindings()
    vehicles = {c.vehicle_id for c in script.cars}
    fence_ids = {f["properties"]["id"] for f in demo_fences(script)["features"]}
    for incident in script.incidents:
        assert incident.vehicle_id in vehicles
        assert incident.device_id is None or bindings[incident.device_id] == incident.vehicle_id
        assert incident.fence_id is None or incident.fence_id in fence_ids
        assert script.t0_ms <= incident.onset_ms < incident.due_ms <= script.t0_ms + PLAY_MS


def test_a_small_fleet_keeps_the_first_incidents_and_a_large_one_adds_routine_cars() -> None:
    small = build_demo(1, 2, T0_MS)
    assert [c.role for c in small.cars] == ["power", "jump"]
    assert {i.type for i in small.incidents} == {AlertType.POWER_CUT, AlertType.GPS_JUMP}
    large = build_demo(1, 40, T0_MS)
    assert Counter(c.role for c in large.cars)["routine"] == 32
    with pytest.raises(ValueError, match="cars"):
        build_demo(1, 0, T0_MS)


# -- fences and rules ------------------------------------------------------------------------


def test_fences_load_as_the_contracts_geojson_with_every_kind(script: DemoScript) -> None:
    fences = {f.id: f for f in load_fences(demo_fences(script), name="demo")}
    kinds = Counter(f.kind for f in fences.values())
    assert kinds[FenceKind.HOTSPOT] >= 3
    assert kinds[FenceKind.ALLOWED_AREA] == 1
    assert kinds[FenceKind.ZONE] == 1
    assert fences[METRO_ID].vehicles == frozenset(c.vehicle_id for c in script.cars)
    assert fences[ZONE_ID].notify == frozenset({"enter", "exit"})


def test_demo_rules_shorten_the_timers_to_a_minute() -> None:
    rules = demo_rules().defaults
    assert rules.hotspot_dwell_after_s == 60
    assert rules.offline_after_s == 60
    assert rules.device_separation_duration_s == 60
    assert rules.device_separation_distance_m == 1000
    assert rules.overspeed_duration_s == 30
    assert rules.gps_jump_speed_kmh == Thresholds().gps_jump_speed_kmh


# -- the scripted device ---------------------------------------------------------------------


def _device(script: DemoScript, role: str) -> ScriptedDevice:
    car = next(c for c in script.cars if c.role == role)
    return ScriptedDevice(car.trackers[0], script.t0_ms)


def test_the_power_cut_bit_is_set_from_its_time_on(script: DemoScript) -> None:
    device = _device(script, "power")
    cut_ms = device.tracker.power_cut_ms
    assert cut_ms is not None
    assert device.report_at(cut_ms - 1000).alarm & Alarm.POWER_CUT == 0
    assert device.report_at(cut_ms).alarm & Alarm.POWER_CUT
    assert device.report_at(cut_ms + 60_000).alarm & Alarm.POWER_CUT


def test_the_gps_jump_displaces_exactly_one_report(script: DemoScript) -> None:
    device = _device(script, "jump")
    jump_ms = device.tracker.jump_ms
    assert jump_ms is not None
    times = [jump_ms - 5000, jump_ms + 2000, jump_ms + 7000]
    lat_e6 = [device.report_at(t).lat_e6 - Device.report_at(device, t).lat_e6 for t in times]
    assert lat_e6[0] == 0 and lat_e6[2] == 0
    assert lat_e6[1] != 0 and abs(lat_e6[1] - JUMP_LAT_E6) < 1000


def test_a_scripted_device_sends_its_reports_as_jt808_frames(script: DemoScript) -> None:
    device = _device(script, "power")
    device.connection_made(T0_MS)
    platform = Jt808Connection(Role.PLATFORM)
    platform.receive_data(device.data_to_send(), T0_MS / 1000)
    first = [e for e in platform.events() if isinstance(e, MessageReceived)]
    assert isinstance(first[0].message, Register)
    assert first[0].message.plate == device.tracker.registration.plate


# -- the script through the real engine ------------------------------------------------------


def test_every_injected_incident_alerts_in_time_under_the_demo_rules(
    script: DemoScript, played: list[tuple[int, Alert]]
) -> None:
    for incident in script.incidents:
        matches = [
            (now, a)
            for now, a in played
            if a.type is incident.type
            and a.vehicle_id == incident.vehicle_id
            and (incident.device_id is None or a.device_id == incident.device_id)
            and (incident.fence_id is None or a.fence_id == incident.fence_id)
        ]
        assert len(matches) == 1, (incident, matches)
        now, alert = matches[0]
        assert incident.onset_ms - 10_000 <= alert.time_ms <= incident.due_ms, incident
        assert now <= incident.due_ms + CHUNK_MS, incident


def test_routine_cars_raise_no_alert(script: DemoScript, played: list[tuple[int, Alert]]) -> None:
    routine = {c.vehicle_id for c in script.cars if c.role == "routine"}
    assert routine
    assert [a for _, a in played if a.vehicle_id in routine] == []
    assert len(played) == len(script.incidents)


def test_the_script_covers_the_risk_rules_of_the_contract(script: DemoScript) -> None:
    assert {i.type for i in script.incidents} == {
        AlertType.HOTSPOT_DWELL,
        AlertType.LEAVE_ALLOWED_AREA,
        AlertType.POWER_CUT,
        AlertType.OFFLINE,
        AlertType.DEVICE_SEPARATION,
        AlertType.OVERSPEED,
        AlertType.GPS_JUMP,
        AlertType.GEOFENCE_ENTER,
        AlertType.GEOFENCE_EXIT,
    }


def test_other_seeds_play_the_whole_script_without_stray_alerts() -> None:
    for seed in (1, 2):
        script = build_demo(seed, 12, T0_MS)
        played = run_engine(script, T0_MS + 200_000)
        assert sorted(a.type.value for _, a in played) == sorted(
            i.type.value for i in script.incidents
        )


def test_location_reports_are_the_2013_edition(script: DemoScript) -> None:
    device = make_devices(script)[0]
    assert device.edition.value == 2013
    assert isinstance(device.report_at(T0_MS), LocationReport)
