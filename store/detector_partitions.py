"""Checkpoints of the detector partitions and the detectors' heartbeats (docs/deploy.md).

A partition's checkpoint is its owner's engine state (opaque bytes, `pipeline.checkpoint`) and
the positions cursor it reflects. Only the detector named as `owner` may write it: a claim
names the new owner first, so a detector that lost its lock without noticing has its next
write refused instead of moving the checkpoint back. SQL written once for both databases
(`store.statements`); which detector holds a partition is an advisory lock
(`store.partition_locks`), not a row.
"""

from __future__ import annotations

from dataclasses import dataclass

from store.statements import StatementRunner


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A partition's saved state: `state` None while its owner has saved none yet."""

    seq: int
    state: bytes | None
    owner: str
    saved_ms: int


@dataclass(frozen=True, slots=True)
class DetectorMember:
    member: str
    place: str
    seen_ms: int
    owned: int


class DetectorPartitionRecords:
    """Mixin of both adapters."""

    def partition_checkpoint(
        self: StatementRunner, partitions: int, part: int
    ) -> Checkpoint | None:
        rows = self._run(
            "read partition checkpoint",
            "SELECT seq, state, owner, saved_ms FROM detector_partitions"
            " WHERE partitions = ? AND part = ?",
            (partitions, part),
        ).rows
        if not rows:
            return None
        seq, state, owner, saved = rows[0]
        return Checkpoint(int(seq), None if state is None else bytes(state), owner, int(saved))

    def claim_partition(
        self: StatementRunner, partitions: int, part: int, owner: str, seq: int, now_ms: int
    ) -> None:
        """Names `owner` as the partition's; a partition never claimed starts at `seq`."""
        self._run(
            "claim partition",
            "INSERT INTO detector_partitions (partitions, part, seq, state, owner, saved_ms)"
            " VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (partitions, part)"
            " DO UPDATE SET owner = excluded.owner",
            (partitions, part, seq, owner, now_ms),
        )

    def save_partition_checkpoint(
        self: StatementRunner,
        partitions: int,
        part: int,
        owner: str,
        seq: int,
        state: bytes,
        now_ms: int,
    ) -> bool:
        """Saves the state at `seq`; False (nothing written) when `owner` no longer owns it."""
        done = self._run(
            "save partition checkpoint",
            "UPDATE detector_partitions SET seq = ?, state = ?, saved_ms = ?"
            " WHERE partitions = ? AND part = ? AND owner = ?",
            (seq, state, now_ms, partitions, part, owner),
        )
        return done.rowcount == 1

    def lowest_partition_cursor(self: StatementRunner, partitions: int) -> int | None:
        """The lowest cursor of the partitions of that count (None before any claim)."""
        rows = self._run(
            "lowest partition cursor",
            "SELECT min(seq) FROM detector_partitions WHERE partitions = ?",
            (partitions,),
        ).rows
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def detector_heartbeat(
        self: StatementRunner, member: str, place: str, owned: int, now_ms: int
    ) -> None:
        self._run(
            "detector heartbeat",
            "INSERT INTO detector_members (member, place, seen_ms, owned) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (member) DO UPDATE SET seen_ms = excluded.seen_ms,"
            " owned = excluded.owned, place = excluded.place",
            (member, place, now_ms, owned),
        )

    def detector_member(self: StatementRunner, member: str) -> DetectorMember | None:
        rows = self._run(
            "read detector member",
            "SELECT member, place, seen_ms, owned FROM detector_members WHERE member = ?",
            (member,),
        ).rows
        if not rows:
            return None
        name, place, seen, owned = rows[0]
        return DetectorMember(name, place, int(seen), int(owned))

    def forget_detector_members(self: StatementRunner, before_ms: int) -> int:
        """Drops heartbeats older than `before_ms` (detectors long gone); returns how many."""
        return self._run(
            "forget detector members",
            "DELETE FROM detector_members WHERE seen_ms < ?",
            (before_ms,),
        ).rowcount
