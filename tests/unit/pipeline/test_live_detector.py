"""The live detector without its thread: batches as the gateway hands them, a fake clock, and a
recorder that can fail like a store that is down."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from alerts.lifecycle import StoredAlert, opened
from alerts.model import Alert
from pipeline.fleet import Fleet, Vehicle
from pipeline.live import LiveDetector, fleet_from_devices
from positions import DeviceIndex, PositionBatch
from store import Device, StoreUnavailableError
from tests.unit.pipeline.tracks import HOME, circle, east, fences, fleet, minute_ms

POWER_CUT = 1 << 8
PAWN = east(HOME, 5_000)


class FakeRecorder:
    """Keeps what it is given; `down` makes it fail as an unreachable store would."""

    def __init__(self) -> None:
        self.saved: list[tuple[Alert, int]] = []
        self.calls = 0
        self.down = False
        self.closed = False

    def record(self, alerts: Sequence[Alert], now_ms: int) -> list[StoredAlert]:
        self.calls += 1
        if self.down:
            raise StoreUnavailableError("database unavailable")
        new = [a for a in alerts if a not in [s for s, _ in self.saved]]
        self.saved += [(a, now_ms) for a in new]
        return [opened(len(self.saved) + i, a, now_ms) for i, a in enumerate(new)]

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def gateway_batch(
    devices: DeviceIndex,
    rows: Sequence[tuple[str, float, tuple[float, float], int]],
) -> PositionBatch:
    """Rows (terminal, minute, (lon, lat), alarm) indexed by the gateway's own DeviceIndex."""
    return PositionBatch.from_columns(
        {
            "device": [devices.index_of(t) for t, _, _, _ in rows],
            "time_ms": [minute_ms(m) for _, m, _, _ in rows],
            "recv_ms": [minute_ms(m) + 500 for _, m, _, _ in rows],
            "lon": [p[0] for _, _, p, _ in rows],
            "lat": [p[1] for _, _, p, _ in rows],
            "alarm": [a for _, _, _, a in rows],
            "status": np.full(len(rows), 2),  # parked: positioned, ACC off
        }
    )


def detector(clock: Clock, **kw: object) -> tuple[LiveDetector, FakeRecorder]:
    recorder = FakeRecorder()
    return LiveDetector(recorder, clock_ms=clock, **kw), recorder  # type: ignore[arg-type]


def test_a_batch_from_the_gateway_raises_its_alerts_on_the_next_cycle() -> None:
    clock = Clock(minute_ms(1))
    live, recorder = detector(clock)
    devices = DeviceIndex(["013900000009"])  # gateway indexes differ from the engine's
    live.on_positions(gateway_batch(devices, [("013900000001", 0, HOME, POWER_CUT)]), devices)
    assert recorder.saved == []  # queued only: nothing runs on the caller's side
    new = live.run_once()
    assert [(s.alert.type.value, s.alert.device_id) for s in new] == [("power_cut", "013900000001")]
    assert recorder.saved[0][1] == minute_ms(1)  # stored with the wall clock's now


def test_timers_fire_on_the_clock_without_new_data_and_only_once() -> None:
    clock = Clock(minute_ms(0))
    live, recorder = detector(clock)
    devices = DeviceIndex()
    live.on_positions(gateway_batch(devices, [("W", 0, HOME, 0)]), devices)
    live.run_once()
    clock.now_ms = minute_ms(119)
    assert live.run_once() == []
    clock.now_ms = minute_ms(121)
    # Silence is measured on receive time: the report arrived 500 ms after its fix.
    assert [(s.alert.type.value, s.alert.time_ms) for s in live.run_once()] == [
        ("offline", minute_ms(120) + 500)
    ]
    clock.now_ms = minute_ms(300)
    assert live.run_once() == []
    assert [a.type.value for a, _ in recorder.saved] == ["offline"]


def test_timers_wait_for_the_next_tick() -> None:
    clock = Clock(minute_ms(0))
    live, _ = detector(clock, tick_s=60.0)
    devices = DeviceIndex()
    live.on_positions(gateway_batch(devices, [("W", 0, HOME, 0)]), devices)
    live.run_once()  # first tick: the next one is a minute later
    clock.now_ms = minute_ms(0.5)
    live.run_once()
    clock.now_ms = minute_ms(121)
    assert [s.alert.type.value for s in live.run_once()] == ["offline"]


def test_batches_queued_while_behind_are_merged_into_one_engine_call_in_order() -> None:
    clock = Clock(minute_ms(100))
    live, recorder = detector(clock, fences=fences(circle("pawn", "hotspot", PAWN, 100)))
    devices = DeviceIndex()
    for minute in range(40):
        live.on_positions(gateway_batch(devices, [("W", minute, PAWN, 0)]), devices)
    new = live.run_once()
    assert live.stats.engine_calls == 1
    assert (live.stats.batches, live.stats.positions) == (40, 40)
    assert [(s.alert.type.value, s.alert.time_ms) for s in new] == [
        ("hotspot_dwell", minute_ms(30))
    ]
    assert recorder.calls == 1


def test_a_fleet_change_applies_between_the_batches_around_it() -> None:
    clock = Clock(minute_ms(0))
    live, _ = detector(clock)
    devices = DeviceIndex()
    live.on_positions(gateway_batch(devices, [("W", 0, HOME, POWER_CUT)]), devices)
    live.set_fleet(fleet(V1=["L"]))
    live.on_positions(gateway_batch(devices, [("L", 1, HOME, POWER_CUT)]), devices)
    new = live.run_once()
    assert [(s.alert.device_id, s.alert.vehicle_id) for s in new] == [("W", "W"), ("L", "V1")]
    assert live.stats.engine_calls == 2  # the change splits the merge


def test_a_refused_fleet_keeps_the_old_one_and_is_counted() -> None:
    live, _ = detector(Clock(0), fences=fences(circle("pawn", "hotspot", PAWN, 100)))
    live.set_fleet(Fleet((Vehicle("V1", ("W",), allowed_area="nowhere"),)))
    live.run_once()
    assert live.stats.errors == 1
    assert live.engine.fleet.vehicles == ()


def test_alerts_survive_a_store_outage_and_are_stored_once_it_is_back() -> None:
    clock = Clock(minute_ms(1))
    live, recorder = detector(clock)
    devices = DeviceIndex()
    recorder.down = True
    live.on_positions(gateway_batch(devices, [("W", 0, HOME, POWER_CUT)]), devices)
    assert live.run_once() == []
    assert live.stats.unsaved == 1
    assert live.run_once() == []  # still down: kept, tried again
    recorder.down = False
    clock.now_ms = minute_ms(2)
    assert [s.alert.type.value for s in live.run_once()] == ["power_cut"]
    assert (live.stats.unsaved, live.stats.stored, recorder.calls) == (0, 1, 3)


def test_batches_beyond_the_row_bound_are_refused_and_counted() -> None:
    live, _ = detector(Clock(0), max_pending_rows=3)
    devices = DeviceIndex()
    rows = [("W", m, HOME, 0) for m in range(2)]
    live.on_positions(gateway_batch(devices, rows), devices)
    live.on_positions(gateway_batch(devices, rows), devices)  # 4 > 3: refused
    assert live.stats.dropped_positions == 2
    live.run_once()
    live.on_positions(gateway_batch(devices, rows), devices)  # room again once drained
    assert live.stats.positions == 4


def test_an_engine_failure_costs_that_batch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    live, _ = detector(Clock(minute_ms(1)))
    devices = DeviceIndex()
    original = live.engine.process
    calls = {"n": 0}

    def flaky(batch: PositionBatch) -> list[Alert]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return original(batch)

    monkeypatch.setattr(live.engine, "process", flaky)
    live.on_positions(gateway_batch(devices, [("A", 0, HOME, POWER_CUT)]), devices)
    live.run_once()
    live.on_positions(gateway_batch(devices, [("B", 0, HOME, POWER_CUT)]), devices)
    assert [s.alert.device_id for s in live.run_once()] == ["B"]
    assert live.stats.errors == 1


def test_the_thread_processes_what_is_queued_and_stops_cleanly() -> None:
    clock = Clock(minute_ms(1))
    live, recorder = detector(clock, tick_s=0.05)
    live.start()
    devices = DeviceIndex()
    live.on_positions(gateway_batch(devices, [("W", 0, HOME, POWER_CUT)]), devices)
    assert live.wait_idle(5.0)
    live.stop()
    assert [a.type.value for a, _ in recorder.saved] == ["power_cut"]
    assert recorder.closed


def test_the_fleet_comes_from_the_devices_vehicle_column() -> None:
    built = fleet_from_devices(
        [
            Device("B", vehicle_id="V1"),
            Device("A", vehicle_id="V1"),
            Device("C"),
            Device("D", vehicle_id="V2"),
        ]
    )
    assert built == Fleet((Vehicle("V1", ("A", "B")), Vehicle("V2", ("D",))))


def test_alerts_raised_while_the_store_is_down_survive_a_restart_in_the_spool(
    tmp_path: Path,
) -> None:
    from pipeline.alert_spool import AlertSpool

    clock = Clock(minute_ms(1))
    live, recorder = detector(clock, spool=AlertSpool(tmp_path / "alerts.spool"))
    devices = DeviceIndex()
    recorder.down = True
    live.on_positions(gateway_batch(devices, [("W", 0, HOME, POWER_CUT)]), devices)
    live.on_positions(gateway_batch(devices, [("X", 0, HOME, POWER_CUT)]), devices)
    assert live.run_once() == []
    assert live.stats.unsaved == 2
    # The process dies with the store still down; a new one starts from the same data dir.
    again, recorder = detector(clock, spool=AlertSpool(tmp_path / "alerts.spool"))
    assert again.spool is not None and again.spool.count == 2
    recorder.down = True
    assert again.run_once() == []  # still down: nothing lost, nothing spooled twice
    assert again.spool.count == 2
    recorder.down = False
    stored = again.run_once()
    assert sorted(s.alert.device_id for s in stored) == ["W", "X"]
    assert again.spool.count == 0 and not (tmp_path / "alerts.spool").exists()
    assert again.run_once() == []  # stored once


def test_a_torn_last_line_of_the_spool_costs_that_line_alone(tmp_path: Path) -> None:
    from alerts.model import AlertType
    from pipeline.alert_spool import AlertSpool

    spool = AlertSpool(tmp_path / "alerts.spool")
    first = Alert(AlertType.POWER_CUT, "W", "V", 1, details={"x": 1})
    spool.add([first, Alert(AlertType.OFFLINE, "X", "V", 2)])
    with (tmp_path / "alerts.spool").open("ab") as f:
        f.write(b'{"type": "power_cu')  # a crash mid-write
    reopened = AlertSpool(tmp_path / "alerts.spool")
    assert reopened.count == 2
    assert [a.device_id for a in reopened.load()] == ["W", "X"]
    assert next(iter(reopened.load())) == first
    reopened.add([Alert(AlertType.OFFLINE, "Y", "V", 3)])  # not glued to the torn line
    assert [a.device_id for a in AlertSpool(tmp_path / "alerts.spool").load()] == ["W", "X", "Y"]


def test_batches_beyond_the_row_bound_are_parked_on_disk_and_detected_in_order(
    tmp_path: Path,
) -> None:
    from pipeline.spill import BatchSpill

    clock = Clock(minute_ms(10))
    spill = BatchSpill(tmp_path / "detector.spill")
    live, recorder = detector(clock, max_pending_rows=3, spill=spill)
    devices = DeviceIndex()
    live.on_positions(gateway_batch(devices, [("W", m, HOME, 0) for m in range(2)]), devices)
    # Over the bound: parked, not dropped. The power cut of a parked batch is still seen.
    live.on_positions(gateway_batch(devices, [("W", 2, HOME, 0), ("X", 2, HOME, 0)]), devices)
    live.on_positions(gateway_batch(devices, [("W", 3, HOME, POWER_CUT)]), devices)
    assert (live.stats.dropped_positions, live.stats.spilled_positions) == (0, 3)
    assert spill.rows == 3
    # While batches are parked, a newer small batch queues behind them, not ahead.
    live.on_positions(gateway_batch(devices, [("X", 4, HOME, POWER_CUT)]), devices)
    assert spill.rows == 4
    stored: list[StoredAlert] = []
    for _ in range(4):
        stored += live.run_once()
    assert [(s.alert.type.value, s.alert.device_id) for s in stored] == [
        ("power_cut", "W"),
        ("power_cut", "X"),
    ]
    assert spill.rows == 0 and (tmp_path / "detector.spill").stat().st_size == 0
    assert live.stats.positions == 6
    live.stop()
    assert not (tmp_path / "detector.spill").exists()
    assert recorder.closed


def test_silence_timers_hold_while_the_gateway_is_not_reading() -> None:
    """The gateway paused reading (its journal full) for longer than the offline threshold:
    no tracker was silent, the platform was deaf. The held time never counts."""
    clock = Clock(minute_ms(0))
    live, recorder = detector(clock)
    devices = DeviceIndex()
    live.on_positions(gateway_batch(devices, [("W", -0.01, HOME, 0)]), devices)
    live.run_once()
    clock.now_ms = minute_ms(10)
    live.hold_silences(True)
    for minute in (60, 130, 170):  # past the 2 h threshold while held
        clock.now_ms = minute_ms(minute)
        live.run_once()
    assert recorder.saved == []
    live.hold_silences(False)  # 160 min held
    clock.now_ms = minute_ms(171)
    live.run_once()
    assert recorder.saved == []
    # The device never spoke again: 2 h of silence outside the hold is an offline alert, its
    # time (last heard, the receive time, + 2 h) as late as the hold made it.
    clock.now_ms = minute_ms(2 + 120 + 160)
    live.run_once()
    [(alert, _)] = recorder.saved
    assert alert.type.value == "offline"
    heard = minute_ms(-0.01) + 500
    assert alert.time_ms == heard + (minute_ms(170) - minute_ms(10)) + 120 * 60_000


def test_a_held_stretch_moves_each_running_timer_by_the_part_after_its_start() -> None:
    from trajectory.state import held

    last = np.array([100, 250, 400, -1], np.int64)
    held(last, last >= 0, 200, 300)
    assert last.tolist() == [200, 300, 400, -1]  # before: +100; inside: to its end; after: 0
