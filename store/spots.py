"""Candidate risk spots: listing them and deciding one (accepting turns it into a hotspot fence in
the decision's transaction). SQL in `store.spot_rows`, run once for both databases."""

from __future__ import annotations

from store import spot_rows
from store.fences import bump_fence_version, insert_fence_sql
from store.interface import FenceFeature, SpotCandidate
from store.statements import StatementRunner


class SpotRecords:
    """Mixin of both adapters."""

    def list_spot_candidates(
        self: StatementRunner, *, status: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[SpotCandidate]:
        rows = self._run(
            "list spot candidates", *spot_rows.list_query(status, after_id, limit, "?")
        ).rows
        return [spot_rows.candidate(row) for row in rows]

    def get_spot_candidate(self: StatementRunner, candidate_id: int) -> SpotCandidate | None:
        rows = self._run("read spot candidate", *spot_rows.get_query(candidate_id, "?")).rows
        return spot_rows.candidate(rows[0]) if rows else None

    def decide_spot_candidate(
        self: StatementRunner,
        candidate_id: int,
        *,
        accept: FenceFeature | None,
        by: str,
        note: str | None,
        now_ms: int,
    ) -> SpotCandidate:
        status = "dismissed" if accept is None else "accepted"
        fence_id = None if accept is None else accept.id
        with self._atomic("decide spot candidate"):
            done = self._run(
                "decide spot candidate",
                *spot_rows.decide_query(candidate_id, status, fence_id, by, note, now_ms),
            ).rows
            if not done:
                found = self._run(
                    "read spot candidate", *spot_rows.get_query(candidate_id, "?")
                ).rows
                raise spot_rows.undecidable(
                    candidate_id, spot_rows.candidate(found[0]) if found else None
                )
            if accept is not None:
                version = bump_fence_version(self, now_ms)
                self._run(
                    "accept spot candidate",
                    insert_fence_sql(self, upsert=False),
                    (accept.id, accept.kind, accept.feature, now_ms, version, accept.org),
                )
        return spot_rows.candidate(done[0])
