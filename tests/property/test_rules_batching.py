"""Any split of the input into batches gives the same alerts; the vectorized engine agrees with
the row-at-a-time reference on the core rules it implements."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.model import Alert, AlertType
from pipeline.reference import run_reference
from tests.unit.pipeline.tracks import (
    HOME,
    Fix,
    circle,
    csv_bytes,
    east,
    fences,
    fleet,
    run,
)

PAWN = east(HOME, 3_000)
FENCES = fences(
    circle("pawn", "hotspot", PAWN, 150),
    circle("depot", "zone", east(HOME, 1_500), 400, notify=["enter", "exit"]),
    circle("city", "allowed_area", HOME, 6_000, vehicles=["V1"]),
)
CORE = {t for t in AlertType if t.value in {
    "geofence_enter", "geofence_exit", "leave_allowed_area", "hotspot_dwell", "offline",
    "power_cut", "antenna_cut", "device_separation", "gps_jump", "overspeed",
}}  # fmt: skip
FLEET = fleet(V1=["W1", "L1"], V2=["W2"])

step = st.tuples(
    st.sampled_from([0.25, 0.5, 1.0, 5.0, 20.0, 150.0]),  # minutes since the previous fix
    st.sampled_from([-4_000.0, -300.0, 0.0, 0.0, 300.0, 2_500.0, 200_000.0]),  # metres east
    st.sampled_from([0.0, 60.0, 130.0]),  # reported speed
    st.sampled_from([0, 0, 0, 1 << 8, 1 << 5]),  # alarm word
    st.sampled_from([3, 3, 3, 3, 0]),  # status (0: not positioned)
)


def _track(device: str, steps: list[tuple[float, float, float, int, int]]) -> list[Fix]:
    fixes, minute, x = [], 0.0, 0.0
    for gap, dx, speed, alarm, status in steps:
        minute += gap
        jump = abs(dx) > 50_000
        lon, lat = east(HOME, x + dx)
        if not jump:
            x += dx
        fixes.append(Fix(device, minute, lon, lat, speed, alarm, status))
    return fixes


tracks = st.fixed_dictionaries(
    {d: st.lists(step, min_size=0, max_size=40) for d in ("W1", "L1", "W2")}
)


def _interleave(per_device: dict[str, list[Fix]], shuffle_seed: int) -> list[Fix]:
    rows = sorted(
        (f for fixes in per_device.values() for f in fixes),
        key=lambda f: (f.minute, (hash((f.device, shuffle_seed)) % 7)),
    )
    # A few rows swapped with their neighbour: out-of-order rows within a device.
    if shuffle_seed % 3 == 0 and len(rows) > 4:
        rows[2], rows[3] = rows[3], rows[2]
    return rows


def _keys(alerts: list[Alert]) -> list[tuple[str, str, str, int, str | None]]:
    return sorted((a.type.value, a.vehicle_id, a.device_id, a.time_ms, a.fence_id) for a in alerts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks, st.integers(0, 1000), st.integers(1, 25))
def test_any_split_into_batches_gives_identical_alerts(
    steps: dict[str, list[tuple[float, float, float, int, int]]], seed: int, batch_rows: int
) -> None:
    rows = _interleave({d: _track(d, s) for d, s in steps.items()}, seed)
    whole = run(rows, FENCES, FLEET)
    split = run(rows, FENCES, FLEET, batch_rows=batch_rows)
    assert _keys(split) == _keys(whole)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks, st.integers(0, 1000))
def test_the_engine_agrees_with_the_row_at_a_time_reference(
    steps: dict[str, list[tuple[float, float, float, int, int]]], seed: int
) -> None:
    rows = _interleave({d: _track(d, s) for d, s in steps.items()}, seed)
    expected = run_reference(csv_bytes(rows), FLEET, fences=FENCES)
    core = [a for a in run(rows, FENCES, FLEET) if a.type in CORE]
    assert _keys(core) == _keys(expected)
