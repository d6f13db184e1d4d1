"""The writer that drains the journal into the store.

Blocking and free of asyncio: the gateway runs `drain_forever`, the one drain loop, as a thread
of its own. A store failure leaves the journal untouched: the same records are read again on the
next call, and the store's idempotent writes absorb the overlap.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
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


class StoreSink(PositionSink, Protocol):
    """A store the drain opens itself, and closes when it fails."""

    def close(self) -> None: ...


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


@dataclass(frozen=True, slots=True)
class DrainPolicy:
    """How often the drain writes and how it waits for a store that is down."""

    # Time between two drains when the journal is not behind: each write also refreshes every
    # device's latest position, so fewer, larger writes cost the database far less per row.
    interval_s: float = 0.5
    # Journal bytes not yet stored past which the drain writes again at once.
    backlog_bytes: int = 8 * 1024 * 1024
    retry_s: float = 0.2
    max_retry_s: float = 5.0
    # The last pass after `stop` writes for at most this long: a stopping process must go
    # quickly whatever the backlog (what is left waits in the journal for the next start).
    final_pass_s: float = 1.5


def drain_forever(
    journal: Journal,
    store_factory: Callable[[], StoreSink],
    stop: threading.Event,
    *,
    policy: DrainPolicy = DrainPolicy(),
    on_drained: Callable[[DrainResult, float], None] | None = None,
    on_store_error: Callable[[str | None], None] | None = None,
) -> None:
    """The one drain loop: moves durable records into the store until `stop` is set.

    A store failure closes the store and retries with doubling backoff (the journal keeps the
    data and grows); `on_drained(result, seconds)` follows every write that stored rows. After
    `stop`, a last pass leaves nothing behind when the store is up. `on_store_error` hears why
    writes fail when they start failing, and None once they succeed again (for /healthz).
    """
    store: StoreSink | None = None
    wait_s = policy.retry_s
    failure: str | None = None
    while not stop.is_set():
        try:
            if store is None:
                store = store_factory()
            started = time.perf_counter()
            result = drain_once(journal, store)
            took = time.perf_counter() - started
        except Exception as exc:  # the store is down or refused: keep the data, retry later
            if failure != str(exc):
                log.warning("store write failed, the journal keeps the data: %s", exc)
                if on_store_error is not None:
                    on_store_error(str(exc))
            failure = str(exc)
            _close(store)
            store = None
            stop.wait(wait_s)
            wait_s = min(wait_s * 2, policy.max_retry_s)
            continue
        if failure is not None:
            log.info("store writes again")
            if on_store_error is not None:
                on_store_error(None)
        failure, wait_s = None, policy.retry_s
        if result.positions:
            if on_drained is not None:
                on_drained(result, took)
            if journal.depth_bytes >= policy.backlog_bytes:
                continue  # behind: drain again at once
        stop.wait(max(0.0, policy.interval_s - took))
    deadline = time.monotonic() + policy.final_pass_s
    with contextlib.suppress(Exception):
        if store is None:
            store = store_factory()
        while time.monotonic() < deadline and drain_once(journal, store).records:
            pass
    _close(store)


def _close(store: StoreSink | None) -> None:
    if store is not None:
        with contextlib.suppress(Exception):
            store.close()
