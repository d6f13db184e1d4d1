"""The drain against real PostgreSQL going away and coming back: nothing lost, nothing doubled."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psycopg
import pytest

from ingest.journal import Journal
from ingest.journal_drain import drain_once
from positions import DeviceIndex, PositionBatch
from store import StoreUnavailableError, WriteResult, migrate
from store.postgres import PostgresStore

pytestmark = pytest.mark.db
DEVICES = DeviceIndex(f"0139{i:08d}" for i in range(20))
T0 = 1_709_280_000_000


def fill(journal: Journal, records: int) -> None:
    for i in range(records):
        batch = PositionBatch.from_columns(
            {
                "device": np.arange(20),
                "time_ms": np.full(20, T0 + i * 1000),
                "recv_ms": np.full(20, T0 + i * 1000 + 300),
            }
        )
        journal.append(batch, DEVICES)
    journal.commit()


def stored_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
    assert row is not None
    return int(row[0])


def terminate_other_backends(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


class KillsItsBackendFirst:
    """Terminates the store's server session just as a drain writes: the write is cut off."""

    def __init__(self, store: PostgresStore, url: str) -> None:
        self.store, self.url = store, url

    def write_positions(self, batch: PositionBatch, terminals: Sequence[str]) -> WriteResult:
        terminate_other_backends(self.url)
        return self.store.write_positions(batch, terminals)


def test_a_drain_cut_off_by_the_server_keeps_its_records_and_succeeds_on_retry(
    pg_url: str, tmp_path: Path
) -> None:
    migrate(pg_url, tmp_path)
    store = PostgresStore(pg_url)
    journal = Journal(tmp_path / "journal", max_bytes=1 << 20)
    fill(journal, 5)
    drain_once(journal, store, max_bytes=1)  # one record in
    with pytest.raises(StoreUnavailableError):
        drain_once(journal, KillsItsBackendFirst(store, pg_url))
    assert [r.lsn for r in journal.pending()] == [2, 3, 4, 5]
    assert stored_rows(pg_url) == 20
    drain_once(journal, store, max_bytes=1)  # reconnects
    terminate_other_backends(pg_url)  # now the store's open connection is dead before use
    with pytest.raises(StoreUnavailableError):
        drain_once(journal, store)
    assert [r.lsn for r in journal.pending()] == [3, 4, 5]
    while drain_once(journal, store).records:
        pass
    assert journal.depth_bytes == 0
    assert stored_rows(pg_url) == 100
    store.close()


def test_a_store_at_a_closed_port_is_reported_unavailable_not_crashed(pg_url: str) -> None:
    base, _, dbname = pg_url.rpartition("/")
    host = base.rpartition("@")[0] + "@127.0.0.1:1"
    with pytest.raises(StoreUnavailableError, match="cannot connect"):
        PostgresStore(f"{host}/{dbname}", connect_timeout_s=2)


def test_replaying_a_drained_journal_adds_no_rows(pg_url: str, tmp_path: Path) -> None:
    migrate(pg_url, tmp_path)
    store = PostgresStore(pg_url)
    journal = Journal(tmp_path / "journal", max_bytes=1 << 20)
    fill(journal, 3)
    records = journal.pending()
    drain_once(journal, store)
    journal.close()
    (tmp_path / "journal" / "drained").unlink()  # the checkpoint lost: everything replays
    reopened = Journal(tmp_path / "journal", max_bytes=1 << 20)
    assert [r.lsn for r in reopened.pending()] == [r.lsn for r in records]
    drain_once(reopened, store)
    assert stored_rows(pg_url) == 60
    store.close()
