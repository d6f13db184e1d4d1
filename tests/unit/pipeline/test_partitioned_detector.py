"""The engines of a detector process's partitions (pipeline.partitioned): a partition goes on
from its checkpoint in another process as if never moved, fences included, and a device that
moved to another partition raises nothing from the state it left."""

from __future__ import annotations

import zlib

import pytest

from geofence import Fence
from pipeline.checkpoint import CheckpointError, decode_engine, encode_engine
from pipeline.partitioned import PartitionedDetector
from pipeline.partitions import partition_of
from positions import DeviceIndex
from tests.unit.pipeline.test_live_detector import Clock, FakeRecorder, gateway_batch
from tests.unit.pipeline.tracks import HOME, circle, east, fences, fleet, minute_ms

PARTITIONS = 4
PAWN_FAR = east(HOME, 5_000)
HOTSPOT = fences(circle("pawn", "hotspot", PAWN_FAR, 100, name="used-car market"))


def partitioned(clock: Clock, fence_list: list[Fence]) -> tuple[PartitionedDetector, FakeRecorder]:
    recorder = FakeRecorder()
    detector = PartitionedDetector(
        recorder,  # type: ignore[arg-type]
        partitions=PARTITIONS,
        fences=fence_list,
        clock_ms=clock,
    )
    return detector, recorder


def feed(detector: PartitionedDetector, part: int, terminal: str, minutes: range) -> None:
    devices = DeviceIndex()
    rows = [(terminal, m, PAWN_FAR, 0) for m in minutes]
    batch = gateway_batch(devices, rows)
    detector.feed(part, batch, [devices.terminal(i) for i in range(len(devices))])


def test_a_partition_restored_in_another_process_finishes_the_dwell_it_had_begun() -> None:
    part = partition_of("W", PARTITIONS)
    clock = Clock(minute_ms(20))
    first, _ = partitioned(clock, HOTSPOT)
    first.open(part)
    feed(first, part, "W", range(20))  # 20 minutes at the hotspot: not a dwell yet (30)
    first.cycle()
    checkpoint = encode_engine(first.engine(part))
    # The fences are referenced by id, not copied: their names and properties are not in it.
    assert b"used-car market" not in zlib.decompress(checkpoint[6:])
    clock.now_ms = minute_ms(40)
    second, recorder = partitioned(clock, HOTSPOT)
    second.open(part, decode_engine(checkpoint, second.fences_by_id))
    feed(second, part, "W", range(20, 40))
    second.cycle()
    assert [(a.type.value, a.time_ms) for a, _ in recorder.saved] == [
        ("hotspot_dwell", minute_ms(30))
    ]
    # Without the checkpoint the dwell would start at minute 20 and not be one by minute 40.
    fresh, fresh_saved = partitioned(clock, HOTSPOT)
    fresh.open(part)
    feed(fresh, part, "W", range(20, 40))
    fresh.cycle()
    assert fresh_saved.saved == []


def test_a_checkpoint_naming_a_fence_that_is_gone_is_refused() -> None:
    clock = Clock(minute_ms(1))
    detector, _ = partitioned(clock, HOTSPOT)
    part = partition_of("W", PARTITIONS)
    detector.open(part)
    feed(detector, part, "W", range(1))
    detector.cycle()
    with pytest.raises(CheckpointError, match="pawn"):
        decode_engine(encode_engine(detector.engine(part)), {})


def test_a_device_bound_to_a_car_of_another_partition_raises_nothing_from_its_old_state() -> None:
    part = partition_of("W", PARTITIONS)
    stays = next(t for t in (f"X{n}" for n in range(100)) if partition_of(t, PARTITIONS) == part)
    car = next(v for v in (f"V{n}" for n in range(100)) if partition_of(v, PARTITIONS) != part)
    clock = Clock(minute_ms(0))
    detector, recorder = partitioned(clock, [])
    detector.open(part)
    devices = DeviceIndex()
    batch = gateway_batch(devices, [("W", 0, HOME, 0), (stays, 0, HOME, 0)])
    detector.feed(part, batch, ["W", stays])
    detector.cycle()
    detector.set_fleet(fleet(**{car: ["W"]}))
    assert detector.map.of("W") == partition_of(car, PARTITIONS) != part
    clock.now_ms = minute_ms(121)  # both silent past the offline threshold
    detector.cycle()
    assert [(a.type.value, a.device_id) for a, _ in recorder.saved] == [("offline", stays)]
