"""Prometheus metrics of the gateway, in a registry of its own (tests run several gateways)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ingest.jt808.ids import MessageId
from ingest.registry import Refusal


class JournalState(Protocol):
    """The journal's counters the metrics read (ingest.journal.Journal has them)."""

    damaged_records: int
    damaged_bytes: int
    out_of_space: bool


# Message ids a label may name: the protocol's own. Any other id counts as "other", so no peer
# can grow the label set (one series per id it makes up).
_KNOWN_IDS = {int(m): f"0x{int(m):04x}" for m in MessageId}


def message_label(msg_id: int) -> str:
    """The `msg_id` label of a message id: its hex form when the protocol defines it."""
    return _KNOWN_IDS.get(msg_id, "other")


# Acknowledgement latency buckets, seconds: fsync group commit sits in the low milliseconds.
_ACK_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BatchHistogram(Collector):
    """A Prometheus histogram fed a whole array at a time: one bucket count per call instead of
    one locked observe per value (every acknowledged report is observed)."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: npt.NDArray[np.float64]) -> None:
        if not len(values):
            return
        slots = np.searchsorted(self._bounds, values, side="left")  # le: value <= bound
        counts = np.bincount(slots, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def observe(self, value: float) -> None:
        self.observe_many(np.array([value], dtype=np.float64))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        bounds = [*(repr(float(b)) for b in self._bounds), "+Inf"]
        yield HistogramMetricFamily(
            self._name,
            self._documentation,
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=total,
        )


class GatewayMetrics:
    """Connections, frames in and out, rejects by reason, positions, journal depth, latencies."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.connections = Gauge("lienwatch_connections_open", "Open JT808 connections", registry=r)
        self.connections_total = Counter(
            "lienwatch_connections_total", "JT808 connections accepted", registry=r
        )
        self.connections_refused = Counter(
            "lienwatch_connections_refused_total",
            "JT808 connections closed on accept: over the total cap or the per-address cap",
            ["cap"],
            registry=r,
        )
        self.registration_lookups = Counter(
            "lienwatch_registration_lookups_total",
            "Store lookups of terminals unknown at registration: made, or deferred (over rate)",
            ["outcome"],
            registry=r,
        )
        self.frames_in = Counter(
            "lienwatch_frames_in_total", "Frames received", ["msg_id"], registry=r
        )
        self.frames_out = Counter("lienwatch_frames_out_total", "Frames sent", registry=r)
        self.frames_rejected = Counter(
            "lienwatch_frames_rejected_total", "Frames rejected", ["reason"], registry=r
        )
        self.positions_acked = Counter(
            "lienwatch_positions_acked_total", "Positions acknowledged after commit", registry=r
        )
        self.positions_stored = Counter(
            "lienwatch_positions_stored_total", "Positions drained into the store", registry=r
        )
        self.journal_depth = Gauge(
            "lienwatch_journal_depth_bytes", "Journal bytes not yet in the store", registry=r
        )
        self.paused = Gauge(
            "lienwatch_reading_paused", "1 while sockets are paused (backpressure)", registry=r
        )
        self.ack_latency = BatchHistogram(
            "lienwatch_ack_latency_seconds",
            "Receipt of a location frame to its acknowledgement",
            _ACK_BUCKETS,
            r,
        )
        self.store_write_latency = Histogram(
            "lienwatch_store_write_seconds",
            "One drain write into the store",
            buckets=_ACK_BUCKETS,
            registry=r,
        )
        self.commands = Counter(
            "lienwatch_commands_total", "Platform commands by outcome", ["outcome"], registry=r
        )
        self.identity_refusals = Counter(
            "lienwatch_identity_refusals_total",
            "Registrations and authentications refused, by reason",
            ["reason"],
            registry=r,
        )
        for reason in Refusal:  # a closed label set, every value shown from the start
            self.identity_refusals.labels(reason.value)


class JournalCollector(Collector):
    """The journal's own counters read at scrape time: damaged records and bytes (since this
    process opened it, recovery included) and whether the disk is out of space."""

    def __init__(self, journal: JournalState, registry: CollectorRegistry) -> None:
        self._journal = journal
        registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        journal = self._journal
        yield CounterMetricFamily(
            "lienwatch_journal_damaged_records",
            "Journal records lost to damage (found at recovery or when read)",
            value=journal.damaged_records,
        )
        yield CounterMetricFamily(
            "lienwatch_journal_damaged_bytes",
            "Journal bytes that held no readable record",
            value=journal.damaged_bytes,
        )
        yield GaugeMetricFamily(
            "lienwatch_journal_out_of_space",
            "1 while the journal's disk refuses appends",
            value=1 if journal.out_of_space else 0,
        )
