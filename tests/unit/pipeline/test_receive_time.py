"""Silence on receive time (contracts section 3): a device that talks is not offline, whatever
fix times it sends; and replay with a `received` column makes the live side's decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np

from alerts.model import Alert
from pipeline.csv_positions import read_positions_csv
from pipeline.engine import Engine
from pipeline.replay import replay
from positions import Flag, PositionBatch
from tests.unit.pipeline.tracks import HOME, T0, east, fleet, minute_ms
from trajectory.clock import HOUR_MS, DeviceClocks

SILENCES = {"offline", "all_devices_offline", "partial_offline"}


def reports(
    device: int,
    minutes: Sequence[float],
    *,
    behind_ms: int = 0,
    recv_after_ms: int = 800,
    flags: int = 0,
    speed_kmh: float = 30.0,
) -> PositionBatch:
    """Reports received at `minutes` whose fix times are `behind_ms` older than that (less
    the usual lag); the car drives east slowly."""
    recv = np.array([minute_ms(m) for m in minutes], np.int64)
    fix = recv - recv_after_ms - behind_ms
    lon = [east(HOME, 10 * m)[0] for m in minutes]
    return PositionBatch.from_columns(
        {
            "device": np.full(len(recv), device),
            "time_ms": fix,
            "device_time_ms": fix,
            "recv_ms": recv,
            "lon": lon,
            "lat": np.full(len(recv), HOME[1]),
            "speed_kmh": np.full(len(recv), speed_kmh),
            "status": np.full(len(recv), 3),
            "flags": np.full(len(recv), flags),
        }
    )


def live(engine: Engine, batches: Sequence[tuple[float, PositionBatch]]) -> list[Alert]:
    """The gateway's path: clocks corrected per batch before the engine, which runs its timers
    on the wall clock (a minute after each batch's minute)."""
    clocks = DeviceClocks()
    alerts: list[Alert] = []
    for minute, batch in batches:
        alerts += engine.process(clocks.apply(batch))
        alerts += engine.advance(minute_ms(minute + 1))
    return alerts


def silences(alerts: Sequence[Alert]) -> list[Alert]:
    return [a for a in alerts if a.type.value in SILENCES]


def test_a_utc_clock_that_talks_every_minute_is_never_silent() -> None:
    engine = Engine(fleet=fleet(V1=["A", "B"]))
    engine.devices.index_of("A"), engine.devices.index_of("B")
    batches = [
        (m, PositionBatch.concat([reports(0, [m], behind_ms=8 * HOUR_MS), reports(1, [m])]))
        for m in range(8 * 60)
    ]
    alerts = live(engine, batches)
    assert silences(alerts) == []
    # Its fixes were corrected: the engine's newest fix time is its last receive time, nearly.
    assert abs(int(engine.pre.last_ms[0]) - minute_ms(8 * 60 - 1)) < 2_000


def test_two_day_old_fixes_sent_while_talking_open_no_silence() -> None:
    engine = Engine()
    engine.devices.index_of("A"), engine.devices.index_of("B")
    batches = []
    for m in range(0, 6 * 60, 2):
        # A backfills stored fixes two days old as plain reports; B in 0x0704 batches.
        old = reports(0, [m], behind_ms=48 * HOUR_MS)
        batch_of_old = reports(1, [m, m, m], behind_ms=48 * HOUR_MS, flags=int(Flag.BACKFILL))
        batch_of_old = PositionBatch.from_columns(
            {**batch_of_old.columns(), "time_ms": batch_of_old.time_ms - [2000, 1000, 0]}
        )
        batch_of_old = PositionBatch.from_columns(
            {**batch_of_old.columns(), "device_time_ms": batch_of_old.time_ms}
        )
        batches.append((m, PositionBatch.concat([old, batch_of_old])))
    assert silences(live(engine, batches)) == []


def test_backfill_after_live_reports_is_talk_and_moves_no_rule_back() -> None:
    engine = Engine()
    engine.devices.index_of("A")
    first = [(m, reports(0, [m])) for m in range(60)]
    late = [(m, reports(0, [m], behind_ms=48 * HOUR_MS)) for m in range(60, 5 * 60)]
    alerts = live(engine, first + late)
    assert silences(alerts) == []
    assert int(engine.pre.last_ms[0]) == minute_ms(59) - 800  # newest fix: the live one


def test_a_device_that_stops_talking_is_offline_two_hours_after_its_last_arrival() -> None:
    engine = Engine()
    engine.devices.index_of("A")
    alerts = live(engine, [(m, reports(0, [m], behind_ms=8 * HOUR_MS)) for m in range(30)])
    alerts += engine.advance(minute_ms(29 + 121))
    offline = [a for a in alerts if a.type.value == "offline"]
    assert [(a.device_id, a.time_ms) for a in offline] == [("A", minute_ms(29 + 120))]


def test_a_stored_silence_is_still_a_silence_when_the_gap_is_backfilled_later() -> None:
    """No report arrived for three hours; stored fixes of those hours arriving afterwards do
    not undo it (the device did not talk meanwhile)."""
    engine = Engine()
    engine.devices.index_of("A")
    before = [(m, reports(0, [m])) for m in range(10)]
    after = [(m, reports(0, [m], behind_ms=(m - 9) * 60_000)) for m in range(190, 200)]
    offline = [a for a in live(engine, before + after) if a.type.value == "offline"]
    assert [a.time_ms for a in offline] == [minute_ms(9) + 2 * HOUR_MS]


def csv(batch: PositionBatch, names: Sequence[str]) -> bytes:
    lines = ["device_id,time,received,lat,lon,speed_kmh,status"]
    for i in range(len(batch)):
        fix = T0 + timedelta(milliseconds=int(batch.device_time_ms[i]) - minute_ms(0))
        recv = T0 + timedelta(milliseconds=int(batch.recv_ms[i]) - minute_ms(0))
        lines.append(
            f"{names[int(batch.device[i])]},{fix.isoformat()},{recv.isoformat()},"
            f"{batch.lat[i]:.7f},{batch.lon[i]:.7f},{batch.speed_kmh[i]},{batch.status[i]}"
        )
    return ("\n".join(lines) + "\n").encode()


def key(alerts: Sequence[Alert]) -> list[tuple[str, str, int]]:
    return sorted((a.type.value, a.device_id, a.time_ms) for a in alerts)


def test_replay_with_received_times_makes_the_live_decisions() -> None:
    names = ["UTC", "OK", "QUIET"]
    batches = []
    for m in range(0, 10 * 60, 3):
        parts = [reports(0, [m], behind_ms=8 * HOUR_MS), reports(1, [m])]
        if m < 60 or m > 5 * 60:  # QUIET is silent for four hours in between
            parts.append(reports(2, [m], behind_ms=48 * HOUR_MS if m > 5 * 60 else 0))
        batches.append((m, PositionBatch.concat(parts)))
    engine = Engine(fleet=fleet(V1=["UTC", "OK"]))
    for name in names:
        engine.devices.index_of(name)
    live_alerts = live(engine, batches)
    live_alerts += engine.finish(minute_ms(10 * 60 - 3))
    rows = read_positions_csv(csv(PositionBatch.concat([b for _, b in batches]), names))
    assert rows.recv_ms is not None
    replayed = replay(rows, Engine(fleet=fleet(V1=["UTC", "OK"])), batch_rows=50).alerts
    assert key(replayed) == key(live_alerts)
    assert [(t, d) for t, d, _ in key(replayed) if t in SILENCES] == [("offline", "QUIET")]


def test_replay_without_received_times_is_as_before() -> None:
    """No `received` column: the fix time stands in, so a UTC clock's fixes are just fixes."""
    batch = reports(0, list(range(0, 600, 5)), behind_ms=8 * HOUR_MS)
    text = csv(batch, ["A"]).decode().splitlines()
    plain = "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != 2) for line in text)
    rows = read_positions_csv((plain + "\n").encode())
    assert rows.recv_ms is None
    result = replay(rows, Engine())
    assert silences(result.alerts) == []
    assert "clock_corrected" not in result.flagged
