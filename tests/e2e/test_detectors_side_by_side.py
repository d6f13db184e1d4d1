"""Detectors side by side (docs/deploy.md): real `serve` processes of the detector role on one
PostgreSQL split the partitions of a fleet; one is SIGKILLed mid-stream, the other takes its
partitions over from their checkpoints, and the alerts stored are exactly those a single
engine raises over the same positions: none missing, none twice."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
import pytest

from geofence import load_fences
from pipeline.engine import Engine
from pipeline.fleet import Fleet, Vehicle
from positions import PositionBatch
from store import Device, Store, migrate, open_store
from store.interface import FenceFeature
from tests.support.processes import Started, start_roles, stop

pytestmark = pytest.mark.db
POWER_CUT = 1 << 8
PARTITIONS = 8
TRACKERS = 48
ROUNDS = 36
KILL_AFTER = 14  # rounds written before one detector is killed
STEP_MS = 2_000  # data time between two rounds
HOTSPOT = {
    "type": "Feature",
    "properties": {"id": "pawn", "kind": "hotspot", "radius_m": 300.0},
    "geometry": {"type": "Point", "coordinates": [121.5, 31.3]},
}


def until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def owned_by(pg_url: str) -> dict[str, int]:
    """member -> partitions it owns, as its heartbeat says."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT member, owned FROM detector_members").fetchall()
    return {str(m): int(n) for m, n in rows if n}


def owners(pg_url: str) -> dict[int, str]:
    """partition -> the detector named its owner."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT part, owner FROM detector_partitions").fetchall()
    return {int(p): str(o) for p, o in rows}


def member_of(log: Path) -> str:
    found = re.search(r"detector (\S+) \(.*\) joins the detectors", log.read_text())
    assert found, f"{log}: no join logged"
    return found.group(1)


def checkpointed_through(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT coalesce(min(seq), -1) FROM detector_partitions").fetchone()
    return int(row[0]) if row else -1


def fleet() -> tuple[Fleet, list[str]]:
    """Half the trackers in two-device cars (both in the car's partition), half on their own."""
    terminals = [f"0139{n:08d}" for n in range(TRACKERS)]
    half = TRACKERS // 2
    cars = tuple(
        Vehicle(f"VIN-{n // 2}", (terminals[n], terminals[n + 1])) for n in range(0, half, 2)
    )
    return Fleet(cars), terminals


def round_batch(round_no: int, t0: int) -> PositionBatch:
    """Every tracker reports once; each cuts its power for two rounds in every nine (an
    incident opens, holds, ends and opens again), offset by tracker."""
    n = TRACKERS
    device = np.arange(n, dtype=np.int32)
    t = np.full(n, t0 + round_no * STEP_MS, np.int64)
    cut = (round_no + device) % 9 < 2
    return PositionBatch(
        device=device, time_ms=t, recv_ms=t + 300, device_time_ms=t,
        lon=121.5 + device * 0.01 + round_no * 1e-5, lat=np.full(n, 31.3),
        speed_kmh=np.full(n, 20, np.float32), course=np.zeros(n, np.int16),
        altitude_m=np.zeros(n, np.int32), alarm=np.where(cut, POWER_CUT, 0).astype(np.uint32),
        status=np.full(n, 3, np.uint32), flags=np.zeros(n, np.uint16),
    )  # fmt: skip


def test_two_detectors_split_a_fleet_and_one_killed_mid_stream_loses_and_doubles_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    migrate(pg_url, tmp_path)
    cars, terminals = fleet()
    store: Store = open_store(pg_url, tmp_path)
    # A hotspot under the first trackers: fence state is part of every checkpoint.
    store.put_fences([FenceFeature("pawn", "hotspot", json.dumps(HOTSPOT))], 0)
    for car in cars.vehicles:
        for terminal in car.devices:
            store.upsert_device(Device(terminal, vehicle_id=car.vehicle_id))
    env = {
        "LIENWATCH_DATABASE_URL": pg_url,
        "LIENWATCH_ROLES": "detector",
        "LIENWATCH_DETECTOR_PARTITIONS": str(PARTITIONS),
    }
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    detectors: list[Started] = []
    try:
        for name, log in zip("ab", logs, strict=True):
            detectors.append(
                start_roles({**env, "LIENWATCH_DATA_DIR": str(tmp_path / name)}, log_to=log)
            )
        # Both own a share (the first took all, then handed half over to the second).
        until(
            lambda: (
                sorted(owned_by(pg_url).values()) == [PARTITIONS // 2] * 2
                and sorted(Counter(owners(pg_url).values()).values()) == [PARTITIONS // 2] * 2
            ),
            what="two detectors owning half each",
        )
        dying, surviving = member_of(logs[0]), member_of(logs[1])
        lost = {p for p, owner in owners(pg_url).items() if owner == dying}
        assert len(lost) == PARTITIONS // 2
        t0 = int(time.time() * 1000) - ROUNDS * STEP_MS
        batches = [round_batch(r, t0) for r in range(ROUNDS)]
        for batch in batches[:KILL_AFTER]:
            store.write_positions(batch, terminals)
            time.sleep(0.15)
        # The first detector dies mid-stream (no goodbye, no last checkpoint).
        killed = detectors[0]
        assert stop(killed.proc, signal.SIGKILL) == -signal.SIGKILL
        killed_at = time.monotonic()
        for batch in batches[KILL_AFTER:]:
            store.write_positions(batch, terminals)
            time.sleep(0.1)
        end = store.last_position_seq()
        until(
            lambda: (
                set(owners(pg_url).values()) == {surviving}
                and owned_by(pg_url).get(surviving) == PARTITIONS
            ),
            what="the survivor owning every partition",
        )
        taken_s = time.monotonic() - killed_at
        until(lambda: checkpointed_through(pg_url) >= end, what="every partition read to the end")
        survivor_log = logs[1].read_text()
        assert " ERROR " not in survivor_log, survivor_log
        taken = re.findall(
            r"partition (\d+) taken over from (\S+) \(last heard ([\d.]+) s ago\)", survivor_log
        )
        # The survivor took each of the dead one's partitions within 10 s of its last
        # heartbeat (it may have taken some from it at the start too, handed over alive).
        after_kill = {int(p): float(s) for p, who, s in taken if who == dying}
        assert set(after_kill) >= lost
        assert taken_s < 10 and all(since < 10 for since in after_kill.values())
        stored = [
            (a.alert.type.value, a.alert.device_id, a.alert.vehicle_id, a.alert.time_ms)
            for a in store.list_alerts(limit=100_000)
        ]
    finally:
        for started in detectors:
            if started.proc.poll() is None:
                assert stop(started.proc, signal.SIGTERM) == 0
        store.close()
    # One engine over the same positions, in the same order.
    engine = Engine(
        fleet=cars,
        fences=load_fences({"type": "FeatureCollection", "features": [HOTSPOT]}),
    )
    engine.devices.indexes_of(terminals)
    expected: list[tuple[str, str, str, int]] = []
    for batch in batches:
        expected += [
            (a.type.value, a.device_id, a.vehicle_id, a.time_ms) for a in engine.process(batch)
        ]
    expected += [
        (a.type.value, a.device_id, a.vehicle_id, a.time_ms)
        for a in engine.advance(int(time.time() * 1000))
    ]
    assert Counter(t for t, *_ in expected)["power_cut"] >= TRACKERS * 3
    assert max(Counter(stored).values()) == 1, "an alert stored twice"
    assert sorted(stored) == sorted(expected)
