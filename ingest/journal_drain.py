"""The writer that drains the journal into the store.

Blocking and free of asyncio: the gateway runs `drain_once` in a worker thread (or
`drain_forever` as a thread of its own). A store failure leaves the journal untouched: the same
records are read again on the next call, and the store's idempotent writes absorb the overlap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ingest.journal import DEFAULT_PENDING_BYTES, Journal
from ingest.journal_format import JournalRecord
from positions import PositionBatch

log = logging.getLogger(__name__)


class PositionSink(Protocol):
    """What the drain needs of a store: an idempotent write of a batch with its terminal ids."""

    def write_positions(self, batch: PositionBatch, terminals: Sequence[str]) -> object: ...


@dataclass(frozen=True, slots=True)
class DrainResult:
    records: int
    positions: int


def merge_records(records: Sequence[JournalRecord]) -> tuple[PositionBatch, list[str]]:
    """One batch for many records: their terminal lists unioned, device indexes remapped."""
    slots: dict[str, int] = {}
    parts = []
    for record in records:
        mapping = np.fromiter(
            (slots.setdefault(t, len(slots)) for t in record.terminals),
            dtype=np.int32,
            count=len(record.terminals),
        )
        columns = record.batch.columns()
        columns["device"] = mapping[record.batch.device]
        parts.append(PositionBatch(**columns))
    return PositionBatch.concat(parts), list(slots)


def drain_once(
    journal: Journal, sink: PositionSink, max_bytes: int = DEFAULT_PENDING_BYTES
) -> DrainResult:
    """Moves up to about `max_bytes` of durable records into `sink`; raises what the sink raises.

    Nothing is marked drained unless the sink's write returned, so a failure loses nothing.
    """
    records = journal.pending(max_bytes)
    if not records:
        return DrainResult(0, 0)
    batch, terminals = merge_records(records)
    sink.write_positions(batch, terminals)
    journal.mark_drained(records[-1])
    return DrainResult(len(records), len(batch))


def drain_forever(
    journal: Journal,
    sink: PositionSink,
    stop: threading.Event,
    *,
    idle_s: float = 0.05,
    retry_s: float = 0.5,
    max_retry_s: float = 30.0,
) -> None:
    """Drains until `stop` is set; on a sink failure waits with doubling backoff and retries."""
    wait_s = retry_s
    while not stop.is_set():
        try:
            result = drain_once(journal, sink)
        except Exception:  # the store is down or refused: keep the data, try again later
            log.warning("journal drain failed; retrying in %.1f s", wait_s, exc_info=True)
            stop.wait(wait_s)
            wait_s = min(wait_s * 2, max_retry_s)
            continue
        wait_s = retry_s
        if result.records == 0:
            stop.wait(idle_s)
