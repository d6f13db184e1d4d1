"""Which detector owns which partition: PostgreSQL session advisory locks (docs/deploy.md).

One connection of its own per detector process holds a membership lock and one lock per owned
partition. A process that dies loses its session, and with it every lock, at once: the other
detectors see the partitions free on their next look, without waiting for a timeout. Locks
are two-key (`pg_try_advisory_lock(int, int)`): the first key names what is locked (a member,
a partition), so they never meet the migration's lock or anyone else's. Every query of
`pg_locks` is limited to this database: other databases on the server run detectors of their
own.

Any failure of the connection raises `StoreUnavailableError` and closes it: whatever this
process held is then to be taken as lost (the caller drops its partitions and joins again).
"""

from __future__ import annotations

import contextlib
import random

import psycopg

from store.interface import StoreUnavailableError

MEMBER_KEY = 0x4C57444D  # "LWDM": one lock per running detector
PARTITION_KEY = 0x4C574450  # "LWDP": one lock per partition, (count << 16) | partition

_HELD = (
    "SELECT objid::bigint, pid = pg_backend_pid() FROM pg_locks WHERE locktype = 'advisory'"
    " AND classid = %s::oid AND objsubid = 2 AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def partition_lock_id(partitions: int, part: int) -> int:
    """The second key of a partition's lock: the count is part of it, so detectors run with
    different counts by mistake never take one vehicle twice under different numbers."""
    return (partitions << 16) | part


class PartitionLocks:
    """The lock connection of one detector process (one thread uses it)."""

    def __init__(self, url: str, partitions: int) -> None:
        if not 1 <= partitions < 1 << 15:
            raise ValueError(f"partitions must be 1..32767, not {partitions}")
        self.url = url
        self.partitions = partitions
        self._conn: psycopg.Connection[tuple[int, ...]] | None = None

    def join(self) -> None:
        """Connects (if not connected) and takes this process's membership lock."""
        if self._conn is not None:
            return
        try:
            conn: psycopg.Connection[tuple[int, ...]] = psycopg.connect(
                self.url, autocommit=True, connect_timeout=5
            )
        except psycopg.Error as exc:
            raise StoreUnavailableError(f"partition locks: database unavailable: {exc}") from exc
        self._conn = conn
        while not self._query("SELECT pg_try_advisory_lock(%s, %s)", (MEMBER_KEY, _member()))[0][0]:
            pass  # another process drew the same number: draw again

    def _query(self, sql: str, params: tuple[int, ...]) -> list[tuple[int, ...]]:
        if self._conn is None:
            raise StoreUnavailableError("partition locks: not connected")
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            self.close()
            raise StoreUnavailableError(f"partition locks: {exc}") from exc

    def members(self) -> int:
        """Detector processes alive now (this one included)."""
        return len(self._query(_HELD, (MEMBER_KEY,)))

    def taken(self) -> tuple[set[int], set[int]]:
        """(partitions this process holds, partitions any other holds)."""
        mine: set[int] = set()
        others: set[int] = set()
        for objid, own in self._query(_HELD, (PARTITION_KEY,)):
            if objid >> 16 != self.partitions:
                continue
            (mine if own else others).add(int(objid) & 0xFFFF)
        return mine, others

    def try_take(self, part: int) -> bool:
        rows = self._query(
            "SELECT pg_try_advisory_lock(%s, %s)",
            (PARTITION_KEY, partition_lock_id(self.partitions, part)),
        )
        return bool(rows[0][0])

    def release(self, part: int) -> None:
        self._query(
            "SELECT pg_advisory_unlock(%s, %s)",
            (PARTITION_KEY, partition_lock_id(self.partitions, part)),
        )

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def close(self) -> None:
        """Ends the session: every lock it held is free."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _member() -> int:
    return random.randint(1, (1 << 31) - 1)
