"""The partition feed's figures on /metrics (lienwatch.partitioned_feed.PartitionMetrics), by the
names docs/deploy.md gives."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from lienwatch.partitioned_feed import PartitionedFeed, PartitionMetrics
from pipeline.partitioned import PartitionedDetector
from store import Store
from store.partition_locks import PartitionLocks
from tests.unit.pipeline.test_live_detector import FakeRecorder


def no_store() -> Store:
    raise AssertionError("the metrics read no store")


def test_ownership_takeovers_and_lag_are_exported_as_documented() -> None:
    detector = PartitionedDetector(FakeRecorder(), partitions=16)  # type: ignore[arg-type]
    locks = PartitionLocks("postgresql://unused", 16)  # connects only when it joins
    feed = PartitionedFeed(no_store, detector, locks, member="m", place="here")
    registry = CollectorRegistry()
    PartitionMetrics(feed, registry)
    feed.stats.owned, feed.stats.members, feed.stats.takeovers = 8, 2, 3
    feed.stats.takeover_s, feed.stats.lag_positions, feed.stats.checkpoints = 1.5, 42, 7
    text = generate_latest(registry).decode()
    for line in (
        "lienwatch_detector_partitions_owned 8.0",
        "lienwatch_detector_members 2.0",
        "lienwatch_detector_takeovers_total 3.0",
        "lienwatch_detector_takeover_seconds 1.5",
        "lienwatch_detector_lag_positions 42.0",
        "lienwatch_detector_checkpoints_total 7.0",
        "lienwatch_detector_partitions_lost_total 0.0",
    ):
        assert line in text.splitlines(), line
