"""Detectors side by side: the partitions this process owns, read from the store and
checkpointed there (docs/deploy.md "Detectors side by side").

Every second the feed looks at the partition locks (`store.partition_locks`): how many
detectors run, which partitions are free. Under its fair share it takes free partitions; over
it (a detector joined) it checkpoints and releases its highest ones. Taking a partition loads
its checkpoint (engine state and the cursor it reflects; `pipeline.checkpoint`) and names this
process its owner. A partition never owned starts at the cursor `detector_cursors` keeps for
"detector": where the single detector of an earlier release had read, then the lowest cursor of
the partitions (so a changed partition count loses no positions), else at the end of the
stream.

Each pass reads one page of the positions stream from the lowest cursor of the owned
partitions and hands each partition its rows past its own cursor (`PositionPage.seq`), then
runs every partition's cycle (`pipeline.partitioned`). Every `checkpoint_s`, and before a
release or a stop, each partition whose alerts are all stored saves its state with its cursor;
the store refuses it if another detector owns the partition now (the partition is dropped
here). After a crash the next owner replays from the last checkpoint: the alerts of that stretch
come again with the same incident keys, so the store keeps one of each.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.checkpoint import CheckpointError, decode_engine, encode_engine
from pipeline.engine import Engine
from pipeline.partitioned import PartitionedDetector
from pipeline.partitions import fair_share, plan
from store import Store
from store.interface import StoreError
from store.partition_locks import PartitionLocks

log = logging.getLogger("lienwatch.detector")
PAGE_ROWS = 50_000
# Where a partition never owned starts: saved by the single detector of an earlier release, then
# kept at the lowest cursor of the partitions (`checkpoint`).
LEGACY_CURSOR = "detector"
FORGET_MEMBERS_MS = 24 * 3600_000  # heartbeats of detectors gone this long are removed


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class FeedStats:
    members: int = 0  # detectors alive at the last look
    owned: int = 0
    takeovers: int = 0  # partitions taken from another detector (dead or handing over)
    takeover_s: float = 0.0  # the last one: time since its owner's last heartbeat
    lag_positions: int = 0  # stream end minus the lowest owned cursor, at the last look
    checkpoints: int = 0
    lost: int = 0  # partitions found owned by another detector (lock lost)


class PartitionedFeed:
    """Store → partitions on a thread of its own; see the module docstring."""

    def __init__(
        self,
        store_factory: Callable[[], Store],
        detector: PartitionedDetector,
        locks: PartitionLocks,
        *,
        member: str,
        place: str,
        interval_s: float = 0.2,
        rebalance_s: float = 1.0,
        checkpoint_s: float = 2.0,
    ) -> None:
        self.store_factory = store_factory
        self.detector = detector
        self.locks = locks
        self.partitions = detector.partitions
        self.member = member
        self.place = place
        self.interval_s = interval_s
        self.rebalance_s = rebalance_s
        self.checkpoint_s = checkpoint_s
        self.cursors: dict[int, int] = {}
        self.saved: dict[int, int] = {}
        self.stats = FeedStats()
        self._forget_due = 0
        self._lowest: int | None = None  # the lowest partition cursor last saved as the start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="partition-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        store: Store | None = None
        failing = False
        due_rebalance = due_checkpoint = 0.0
        while not self._stop.is_set():
            try:
                if store is None:
                    store = self.store_factory()
                now = time.monotonic()
                if now >= due_rebalance:
                    self.rebalance(store)
                    due_rebalance = now + self.rebalance_s
                read = self.step(store)
                if now >= due_checkpoint:
                    self.checkpoint(store)
                    due_checkpoint = now + self.checkpoint_s
            except Exception as exc:  # the database is down (the stream waits there), or a bug
                if not failing:
                    level = logging.WARNING if isinstance(exc, StoreError) else logging.ERROR
                    log.log(
                        level,
                        "detector: cannot read or checkpoint partitions (retrying): %s",
                        exc,
                        exc_info=not isinstance(exc, StoreError),
                    )
                failing = True
                if not self.locks.connected:  # the session ended: its locks are gone
                    self._drop_all("the lock connection was lost")
                if store is not None:
                    store.close()
                    store = None
                self._stop.wait(1.0)
                continue
            if failing:
                log.info("detector: reading positions again")
            failing = False
            if read < PAGE_ROWS:
                self._stop.wait(self.interval_s)
        self._leave(store)

    # -- ownership ------------------------------------------------------------------------
    def rebalance(self, store: Store) -> None:
        """Takes free partitions up to the fair share, releases those over it."""
        if not self.locks.connected:
            self.locks.join()
            log.info("detector %s (%s) joins the detectors", self.member, self.place)
        members = self.locks.members()
        mine, others = self.locks.taken()
        for part in sorted(set(self.cursors) - mine):
            self._drop(part, "its lock is no longer held here")
        share = fair_share(self.partitions, members)
        free = [p for p in range(self.partitions) if p not in mine and p not in others]
        order = random.sample(free, len(free))
        take, release = plan(set(self.cursors), free, share, order)
        for part in release:
            self.hand_over(store, part)
        for part in take:
            if self.locks.try_take(part):
                self.take(store, part)
        now = _now_ms()
        store.detector_heartbeat(self.member, self.place, len(self.cursors), now)
        if now >= self._forget_due:
            store.forget_detector_members(now - FORGET_MEMBERS_MS)
            self._forget_due = now + 600_000
        if self.cursors:
            end = store.last_position_seq()
            self.stats.lag_positions = max(0, end - min(self.cursors.values()))
        else:
            self.stats.lag_positions = 0
        self.stats.members, self.stats.owned = members, len(self.cursors)

    def take(self, store: Store, part: int) -> None:
        """Owns `part` from its checkpoint (or afresh); its lock is held already."""
        now = _now_ms()
        checkpoint = store.partition_checkpoint(self.partitions, part)
        engine: Engine | None = None
        if checkpoint is None:
            start = store.detector_cursor(LEGACY_CURSOR)
            start = store.last_position_seq() if start is None else start
        else:
            start = checkpoint.seq
            if checkpoint.state is not None:
                try:
                    engine = decode_engine(checkpoint.state, self.detector.fences_by_id)
                except CheckpointError as exc:
                    log.error("detector: partition %d starts afresh at %d: %s", part, start, exc)
        store.claim_partition(self.partitions, part, self.member, start, now)
        self.detector.open(part, engine)
        self.cursors[part] = self.saved[part] = start
        if checkpoint is not None and checkpoint.owner != self.member:
            before = store.detector_member(checkpoint.owner)
            since_s = (now - before.seen_ms) / 1000 if before is not None else float("nan")
            self.stats.takeovers += 1
            self.stats.takeover_s = since_s
            log.warning(
                "detector: partition %d taken over from %s (last heard %.1f s ago) at seq %d",
                part, checkpoint.owner, since_s, start,
            )  # fmt: skip
        else:
            log.info("detector: partition %d owned from seq %d", part, start)

    def hand_over(self, store: Store, part: int) -> None:
        """Checkpoints `part` and lets another detector take it."""
        self.detector.cycle()
        self._save(store, part, force=True)
        self.detector.close(part)
        self.cursors.pop(part, None)
        self.saved.pop(part, None)
        self.locks.release(part)
        log.info("detector: partition %d released for another detector", part)

    def _drop(self, part: int, why: str) -> None:
        self.detector.close(part)
        self.cursors.pop(part, None)
        self.saved.pop(part, None)
        self.stats.lost += 1
        log.error("detector: partition %d dropped without a checkpoint: %s", part, why)

    def _drop_all(self, why: str) -> None:
        for part in sorted(self.cursors):
            self._drop(part, why)

    # -- reading --------------------------------------------------------------------------
    def step(self, store: Store) -> int:
        """Reads one page past the lowest owned cursor into the partitions; returns its rows."""
        read = 0
        if self.cursors:
            page = store.positions_since(min(self.cursors.values()), PAGE_ROWS)
            read = len(page.batch)
            if read:
                assert page.seq is not None
                part_of_row = self.detector.map.of_terminals(page.terminals)[page.batch.device]
                for part, cursor in self.cursors.items():
                    rows = np.flatnonzero((part_of_row == part) & (page.seq > cursor))
                    if len(rows):
                        self.detector.feed(part, page.batch.take(rows), page.terminals)
            for part, cursor in self.cursors.items():
                self.cursors[part] = max(cursor, page.cursor)
        self.detector.cycle()
        return read

    def checkpoint(self, store: Store) -> None:
        """Saves every partition that moved on; then the lowest cursor of all detectors'
        partitions becomes the start of a partition never owned before (a changed count)."""
        for part in sorted(self.cursors):
            self._save(store, part)
        lowest = store.lowest_partition_cursor(self.partitions)
        if lowest is not None and lowest != self._lowest:
            store.save_detector_cursor(LEGACY_CURSOR, lowest, _now_ms())
            self._lowest = lowest

    def _save(self, store: Store, part: int, *, force: bool = False) -> None:
        """Saves `part`'s state with its cursor once its alerts are all stored."""
        cursor = self.cursors.get(part)
        if cursor is None or (cursor == self.saved.get(part) and not force):
            return
        if self.detector.unsaved(part):
            return
        try:
            state = encode_engine(self.detector.engine(part))
        except Exception:  # a bug: the partition runs on, its last checkpoint stays
            log.exception("detector: partition %d state not encoded; not checkpointed", part)
            return
        if store.save_partition_checkpoint(
            self.partitions, part, self.member, cursor, state, _now_ms()
        ):
            self.saved[part] = cursor
            self.stats.checkpoints += 1
        else:
            self._drop(part, "another detector owns it now")
            self.locks.release(part)

    # -- stopping -------------------------------------------------------------------------
    def _leave(self, store: Store | None) -> None:
        """A clean stop: every partition checkpointed, then the locks freed at once."""
        try:
            if store is not None and self.locks.connected:
                self.detector.cycle()
                self.checkpoint(store)
        except StoreError as exc:
            log.warning("detector: partitions not checkpointed at stop: %s", exc)
        finally:
            self.locks.close()
            if store is not None:
                store.close()

    def close(self, wait_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(wait_s)


class PartitionMetrics(Collector):
    """The feed's ownership on /metrics (where the process serves it), read when scraped."""

    def __init__(self, feed: PartitionedFeed, registry: CollectorRegistry) -> None:
        self._feed = feed
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        stats = self._feed.stats
        yield GaugeMetricFamily(
            "lienwatch_detector_partitions_owned", "Partitions this detector owns", stats.owned
        )
        yield GaugeMetricFamily(
            "lienwatch_detector_members", "Detector processes alive at the last look", stats.members
        )
        yield CounterMetricFamily(
            "lienwatch_detector_takeovers",
            "Partitions taken from another detector (dead or handing over)",
            value=stats.takeovers,
        )
        yield GaugeMetricFamily(
            "lienwatch_detector_takeover_seconds",
            "The last takeover: seconds since the former owner's last heartbeat",
            stats.takeover_s,
        )
        yield GaugeMetricFamily(
            "lienwatch_detector_lag_positions",
            "Stored positions past the lowest cursor of the owned partitions",
            stats.lag_positions,
        )
        yield CounterMetricFamily(
            "lienwatch_detector_checkpoints", "Partition checkpoints saved", value=stats.checkpoints
        )
        yield CounterMetricFamily(
            "lienwatch_detector_partitions_lost",
            "Partitions dropped because another detector owned them",
            value=stats.lost,
        )
