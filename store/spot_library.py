"""Candidate risk spots as a unit sees them: its subtree's candidates, and a decision that puts
an accepted one into the candidate's unit's own spot library. SQL written once for both
databases (`store.statements`); the adapters mix it in.

A candidate's unit is the tenant whose subtree holds every car of its evidence, else the
platform (`store.spot_rows.evidence_owner`, fixed when the gathering alert stores it): a tenant
sees the places its own cars gather at, and never a candidate naming another tenant's car.
"""

from __future__ import annotations

from organizations import Scope
from store.interface import SpotCandidate
from store.orgs import scope_condition
from store.spot_rows import COLUMNS, candidate, undecidable
from store.statements import StatementRunner


class SpotLibraryRecords:
    """Mixin of both adapters: list, read and decide candidates (`store.scoped.spots` adds the
    fence an accepted one becomes, in the same transaction)."""

    def spot_candidates_in(
        self: StatementRunner,
        scope: Scope | None,
        *,
        status: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[SpotCandidate]:
        """A page of the subtree's candidates by id (`status` only when given)."""
        where: str = "id > ?"
        params: list[object] = [after_id]
        if status is not None:
            where, params = f"{where} AND status = ?", [*params, status]
        within, scope_params = scope_condition(scope)
        if within is not None:
            where, params = f"{where} AND {within}", [*params, *scope_params]
        rows = self._run(
            "list spot candidates",
            f"SELECT {COLUMNS} FROM spot_candidates WHERE {where} ORDER BY id LIMIT ?",
            [*params, limit],
        ).rows
        return [candidate(row) for row in rows]

    def spot_candidate_by_id(self: StatementRunner, candidate_id: int) -> SpotCandidate | None:
        rows = self._run(
            "read spot candidate",
            f"SELECT {COLUMNS} FROM spot_candidates WHERE id = ?",
            (candidate_id,),
        ).rows
        return candidate(rows[0]) if rows else None

    def mark_spot_candidate(
        self: StatementRunner,
        candidate_id: int,
        *,
        status: str,
        fence_id: str | None,
        by: str,
        note: str | None,
        now_ms: int,
    ) -> SpotCandidate:
        """Moves a proposed candidate to `status`; SpotCandidateError `missing` or `decided`.
        Run inside the caller's transaction with the fence it becomes."""
        rows = self._run(
            "decide spot candidate",
            "UPDATE spot_candidates SET status = ?, fence_id = ?, decided_ms = ?,"
            f" decided_by = ?, note = ? WHERE id = ? AND status = 'proposed' RETURNING {COLUMNS}",
            (status, fence_id, now_ms, by, note, candidate_id),
        ).rows
        if rows:
            return candidate(rows[0])
        found = self._run(
            "read spot candidate",
            f"SELECT {COLUMNS} FROM spot_candidates WHERE id = ?",
            (candidate_id,),
        ).rows
        raise undecidable(candidate_id, candidate(found[0]) if found else None)
