"""Backtest jobs as one caller sees them: those of its subtree's units. A job runs over the
requester's unit's subtree (its cars, their positions and alerts) and belongs to that unit."""

from __future__ import annotations

from store.backtest_jobs import BacktestRecord
from store.scoped.base import ScopeBase


class BacktestRecords(ScopeBase):
    def add_backtest_job(
        self,
        since_ms: int,
        until_ms: int,
        rules: str | None,
        tolerance_ms: int,
        runner: str,
        beat_ms: int,
    ) -> BacktestRecord:
        """A queued job of the caller's unit, held by `runner` (whose beats are on the wall
        clock, `beat_ms` the first), audited."""
        with self.transaction("backtest.create"):
            job = self._s.add_backtest(
                org=self.scope.org, since_ms=since_ms, until_ms=until_ms, rules=rules,
                tolerance_ms=tolerance_ms, requested_by=self.actor, runner=runner,
                now_ms=self._clock_ms(), beat_ms=beat_ms,
            )  # fmt: skip
            shown = {"since_ms": since_ms, "until_ms": until_ms, "rules": rules}
            self._audit("backtest.create", f"backtest:{job.id}", job.org, None, shown)
        return job

    def backtest_job(
        self, job_id: int, stale_before_ms: int | None = None
    ) -> BacktestRecord | None:
        """The job, if in the subtree. With `stale_before_ms`, unfinished jobs whose runner
        stopped beating before it are marked failed first (interrupted)."""
        if stale_before_ms is not None:
            self._s.interrupt_stale_backtests(stale_before_ms, self._clock_ms())
        found = self._s.get_backtest(job_id)
        return found if found is not None and self.visible(found.org) else None

    def backtest_jobs(
        self, *, after_id: int = 0, limit: int = 100, stale_before_ms: int | None = None
    ) -> list[BacktestRecord]:
        if stale_before_ms is not None:
            self._s.interrupt_stale_backtests(stale_before_ms, self._clock_ms())
        return self._s.list_backtests(self.scope, after_id=after_id, limit=limit)
