"""Candidate risk spots as one caller sees them: the subtree's candidates (a tenant's own, or
every one for the platform), decided into the candidate's unit's spot library."""

from __future__ import annotations

from dataclasses import replace

from store.interface import FenceFeature, SpotCandidate
from store.scoped.base import NotInScopeError, ScopeBase


class FenceTakenError(NotInScopeError):
    """Accepting into a fence id the subtree already uses (outside it: not found)."""


class SpotRecords(ScopeBase):
    def spot_candidates(
        self, *, status: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[SpotCandidate]:
        return self._s.spot_candidates_in(self.scope, status=status, after_id=after_id, limit=limit)

    def spot_candidate(self, candidate_id: int) -> SpotCandidate | None:
        found = self._s.spot_candidate_by_id(candidate_id)
        return found if found is not None and self.visible(found.org) else None

    def decide_spot_candidate(
        self, candidate_id: int, accept: FenceFeature | None, note: str | None
    ) -> SpotCandidate:
        """Accepts (into a hotspot fence of the candidate's unit) or dismisses a candidate of
        the subtree, with its audit row(s), in one transaction. Raises NotInScopeError (a
        candidate, or a taken fence id, outside the subtree), FenceTakenError, or the adapter's
        SpotCandidateError."""
        what = "spot.dismiss" if accept is None else "spot.accept"
        with self.transaction(what):
            found = self.spot_candidate(candidate_id)
            if found is None:
                raise NotInScopeError(f"no spot candidate {candidate_id}")
            fence = None if accept is None else replace(accept, org=found.org)
            if fence is not None:
                taken = self._s.get_fence(fence.id)
                if taken is not None:
                    if not self.visible(taken.org):
                        raise NotInScopeError(f"fence_id: no fence {fence.id!r} to replace")
                    raise FenceTakenError(f"fence_id: a fence {fence.id!r} exists")
            now_ms = self._clock_ms()
            done = self._s.mark_spot_candidate(
                candidate_id,
                status="dismissed" if fence is None else "accepted",
                fence_id=None if fence is None else fence.id,
                by=self.actor,
                note=note,
                now_ms=now_ms,
            )
            if fence is not None:
                self._s.put_fences([fence], now_ms)
                self._audit("fence.create", f"fence:{fence.id}", fence.org, None, fence)
            self._audit(what, f"spot_candidate:{candidate_id}", found.org, found, done)
        return done
