"""The drain: records merged into one store write, marked drained only after it succeeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ingest.journal import Journal
from ingest.journal_drain import drain_once, merge_records
from positions import DeviceIndex, PositionBatch
from store import open_store

DEVICES = DeviceIndex(["013900000001", "013900000002", "013900000003"])


def batch_of(devices: list[int], first_time_ms: int) -> PositionBatch:
    return PositionBatch.from_columns(
        {"device": devices, "time_ms": first_time_ms + np.arange(len(devices)) * 1000}
    )


class RefusingSink:
    """Stands in for a store that is down: every write raises."""

    def __init__(self) -> None:
        self.calls = 0

    def write_positions(self, batch: PositionBatch, terminals: Sequence[str]) -> object:
        self.calls += 1
        raise ConnectionError("store down")


def test_merging_records_remaps_each_records_devices_onto_one_terminal_list(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, max_bytes=1 << 20)
    journal.append(batch_of([2, 0], 0), DEVICES)
    journal.append(batch_of([1, 2], 10_000), DEVICES)
    journal.commit()
    batch, terminals = merge_records(journal.pending())
    assert [terminals[d] for d in batch.device] == [DEVICES.terminal(i) for i in (2, 0, 1, 2)]
    assert len(terminals) == 3


def test_a_failed_store_write_leaves_every_record_pending(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal", max_bytes=1 << 20)
    journal.append(batch_of([0, 1], 0), DEVICES)
    journal.commit()
    sink = RefusingSink()
    with pytest.raises(ConnectionError):
        drain_once(journal, sink)
    assert sink.calls == 1
    assert [r.lsn for r in journal.pending()] == [1]
    assert journal.depth_bytes > 0


def test_draining_into_the_store_empties_the_journal_and_replays_add_no_rows(
    tmp_path: Path,
) -> None:
    store = open_store(None, tmp_path / "data", migrate=True)
    journal = Journal(tmp_path / "journal", max_bytes=1 << 20)
    for i in range(4):
        journal.append(batch_of([0, 1, 2], i * 10_000), DEVICES)
    journal.commit()
    records = journal.pending()
    assert drain_once(journal, store).positions == 12
    assert journal.depth_bytes == 0
    assert drain_once(journal, store).records == 0
    batch, terminals = merge_records(records)  # a replay of the same records
    assert store.write_positions(batch, terminals).inserted == 0
    assert len(store.track(DEVICES.terminal(1), 0, 10**9)) == 4
    store.close()
