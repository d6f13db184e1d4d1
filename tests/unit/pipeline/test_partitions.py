"""Splitting the vehicles between detectors (pipeline.partitions) and an engine's state as a
checkpoint (pipeline.checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.checkpoint import CheckpointError, decode_engine, encode_engine
from pipeline.engine import Engine
from pipeline.fleet import Fleet, Vehicle
from pipeline.partitions import PartitionMap, fair_share, fleet_part, partition_of, plan
from positions import PositionBatch

POWER_CUT = 1 << 8
T0 = 1_709_280_000_000


def test_the_partition_of_a_key_is_fixed_across_releases_and_processes() -> None:
    # A changed hash would move every vehicle away from its checkpointed state.
    assert [partition_of(k, 16) for k in ("VIN-1", "VIN-2", "013900000081")] == [6, 1, 4]


@given(st.text(min_size=1), st.integers(1, 1024))
def test_a_partition_is_within_the_count(key: str, partitions: int) -> None:
    assert 0 <= partition_of(key, partitions) < partitions


def test_a_vehicles_devices_share_its_partition_and_an_unbound_terminal_hashes_alone() -> None:
    fleet = Fleet(tuple(Vehicle(f"VIN-{n}", (f"a{n}", f"b{n}", f"c{n}")) for n in range(50)))
    parts = PartitionMap(8, fleet)
    for n in range(50):
        assert parts.of(f"a{n}") == parts.of(f"b{n}") == parts.of(f"c{n}")
        assert parts.of(f"a{n}") == partition_of(f"VIN-{n}", 8)
    assert parts.of("loose") == partition_of("loose", 8)
    assert sum(len(fleet_part(fleet, 8, p).vehicles) for p in range(8)) == 50
    assert {p for p in range(8) if fleet_part(fleet, 8, p).vehicles} == {
        parts.of(f"a{n}") for n in range(50)
    }


@given(st.integers(1, 64), st.integers(1, 8))
def test_detectors_taking_their_share_in_turn_own_every_partition_once(
    partitions: int, members: int
) -> None:
    owned: list[set[int]] = [set() for _ in range(members)]
    share = fair_share(partitions, members)
    for member in owned:
        taken = set().union(*owned)
        take, release = plan(member, set(range(partitions)) - taken, share)
        assert release == []
        member |= set(take)
    assert set().union(*owned) == set(range(partitions))
    assert sum(len(m) for m in owned) == partitions
    assert max(len(m) for m in owned) - min(len(m) for m in owned) <= share


def test_a_detector_over_its_share_releases_its_highest_partitions() -> None:
    assert plan(set(range(16)), [], fair_share(16, 2)) == ([], [8, 9, 10, 11, 12, 13, 14, 15])
    assert plan({1, 2}, [0, 3, 4], 4, order=[4, 0, 3]) == ([4, 0], [])


def batch(device: list[int], time_ms: list[int], alarm: list[int]) -> PositionBatch:
    n = len(device)
    t = np.asarray(time_ms, np.int64)
    return PositionBatch(
        device=np.asarray(device, np.int32), time_ms=t, recv_ms=t + 500, device_time_ms=t,
        lon=np.full(n, 121.5), lat=np.full(n, 31.3), speed_kmh=np.zeros(n, np.float32),
        course=np.zeros(n, np.int16), altitude_m=np.zeros(n, np.int32),
        alarm=np.asarray(alarm, np.uint32), status=np.full(n, 3, np.uint32),
        flags=np.zeros(n, np.uint16),
    )  # fmt: skip


def test_an_engine_restored_from_its_checkpoint_goes_on_as_the_original() -> None:
    first = batch([0, 1, 0, 1], [T0, T0, T0 + 30_000, T0 + 30_000], [0, 0, POWER_CUT, 0])
    then = batch([0, 1, 1], [T0 + 60_000, T0 + 60_000, T0 + 90_000], [POWER_CUT, 0, POWER_CUT])
    original = Engine()
    original.devices.indexes_of(["t0", "t1"])
    assert [a.type.value for a in original.process(first)] == ["power_cut"]
    restored = decode_engine(encode_engine(original))
    went_on = [(a.type, a.device_id, a.time_ms) for a in original.process(then)]
    assert went_on == [(a.type, a.device_id, a.time_ms) for a in restored.process(then)]
    # t0's cut goes on (the same incident: no alert), t1's is new; a fresh engine would
    # take t0's cut for a new one.
    assert [(t.value, d, ms) for t, d, ms in went_on] == [("power_cut", "t1", T0 + 90_000)]
    fresh = Engine()
    fresh.devices.indexes_of(["t0", "t1"])
    assert len(fresh.process(then)) == 2


@pytest.mark.parametrize(
    "data",
    [b"", b"LWEC", b"XXXX\x00\x01abc", b"LWEC\x00\x02" + b"x", b"LWEC\x00\x01not zlib"],
)
def test_bytes_that_are_no_checkpoint_of_this_release_are_refused(data: bytes) -> None:
    with pytest.raises(CheckpointError):
        decode_engine(data)
