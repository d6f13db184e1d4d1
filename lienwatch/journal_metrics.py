"""The journal's health on /metrics and in the log at start: what recovery found, what damage
cost, how much waits for the store, whether its disk is full."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest.journal import Journal

log = logging.getLogger("lienwatch.journal")


def log_recovery(journal: Journal) -> None:
    """One line for what opening the journal found; an error for every record lost to damage."""
    report = journal.recovery
    log.info(
        "journal %s: %d segments, %d records, %d not yet stored, %d torn tails cut",
        journal.directory,
        report.segments,
        report.records,
        report.pending_records,
        len(report.truncations),
    )
    if report.damaged:
        log.error(
            "journal %s: %d damaged places cost %d records; every record after them is kept",
            journal.directory,
            len(report.damaged),
            report.lost_records,
        )


class JournalCollector(Collector):
    def __init__(self, journal: Journal, registry: CollectorRegistry) -> None:
        self._journal = journal
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        journal = self._journal
        yield CounterMetricFamily(
            "lienwatch_journal_damaged_records",
            "Journal records lost to damage (found at recovery or on reading)",
            value=journal.damaged_records,
        )
        yield CounterMetricFamily(
            "lienwatch_journal_damaged_bytes",
            "Journal bytes skipped as damaged",
            value=journal.damaged_bytes,
        )
        yield GaugeMetricFamily(
            "lienwatch_journal_out_of_space",
            "1 while the journal's disk refuses writes (reading paused)",
            value=int(journal.out_of_space),
        )
