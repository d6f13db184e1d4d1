"""Backtest jobs in the database: what an officer asked, how far it got, its report.

The API process that takes a job runs it (`api.backtests`) and says it still holds it
(`runner`, `beat_ms`) while it is queued or running; a job whose runner stopped beating (the
process stopped or restarted) can never finish, so reading it marks it `failed` with the
reason (`interrupt_stale`). A job belongs to the requester's unit and covers its subtree.
SQL written once for both databases (`store.statements`); the adapters mix it in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from organizations import Scope
from store.orgs import scope_condition
from store.statements import StatementRunner

INTERRUPTED = "interrupted: the API process running it stopped before it finished"
_COLUMNS = (
    "id, org_id, state, since_ms, until_ms, rules, tolerance_ms, requested_by, created_ms,"
    " started_ms, finished_ms, done_ms, positions, error, report"
)


@dataclass(frozen=True, slots=True)
class BacktestRecord:
    id: int
    org: int
    state: str  # queued, running, done, failed
    since_ms: int
    until_ms: int
    rules: str | None
    tolerance_ms: int
    requested_by: str
    created_ms: int
    started_ms: int | None
    finished_ms: int | None
    done_ms: int  # data time covered
    positions: int
    error: str | None
    report: dict[str, Any] | None


def _record(row: tuple[Any, ...]) -> BacktestRecord:
    def opt(v: Any) -> int | None:
        return None if v is None else int(v)

    return BacktestRecord(
        int(row[0]), int(row[1]), str(row[2]), int(row[3]), int(row[4]), row[5], int(row[6]),
        str(row[7]), int(row[8]), opt(row[9]), opt(row[10]), int(row[11]), int(row[12]), row[13],
        None if row[14] is None else json.loads(row[14]),
    )  # fmt: skip


class BacktestJobRecords:
    """Mixin of both adapters."""

    def add_backtest(
        self: StatementRunner,
        *,
        org: int,
        since_ms: int,
        until_ms: int,
        rules: str | None,
        tolerance_ms: int,
        requested_by: str,
        runner: str,
        now_ms: int,
        beat_ms: int | None = None,
    ) -> BacktestRecord:
        """A queued job; `beat_ms` its runner's first beat, on the runners' (wall) clock when
        the caller's clock is another (default `now_ms`)."""
        rows = self._run(
            "add backtest",
            "INSERT INTO backtests (org_id, since_ms, until_ms, rules, tolerance_ms,"
            " requested_by, created_ms, runner, beat_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" RETURNING {_COLUMNS}",
            (
                org,
                since_ms,
                until_ms,
                rules,
                tolerance_ms,
                requested_by,
                now_ms,
                runner,
                now_ms if beat_ms is None else beat_ms,
            ),
        ).rows
        return _record(rows[0])

    def get_backtest(self: StatementRunner, job_id: int) -> BacktestRecord | None:
        rows = self._run(
            "read backtest", f"SELECT {_COLUMNS} FROM backtests WHERE id = ?", (job_id,)
        ).rows
        return _record(rows[0]) if rows else None

    def list_backtests(
        self: StatementRunner, scope: Scope | None, *, after_id: int = 0, limit: int = 100
    ) -> list[BacktestRecord]:
        """The subtree's jobs by id, without their reports (a page stays small)."""
        where, params = "id > ?", [after_id]
        within, scope_params = scope_condition(scope)
        if within is not None:
            where, params = f"{where} AND {within}", [*params, *scope_params]
        columns = _COLUMNS.replace("report", "NULL")
        rows = self._run(
            "list backtests",
            f"SELECT {columns} FROM backtests WHERE {where} ORDER BY id LIMIT ?",
            [*params, limit],
        ).rows
        return [_record(row) for row in rows]

    def backtest_started(self: StatementRunner, job_id: int, now_ms: int) -> None:
        self._run(
            "start backtest",
            "UPDATE backtests SET state = 'running', started_ms = ?, beat_ms = ?"
            " WHERE id = ? AND state = 'queued'",
            (now_ms, now_ms, job_id),
        )

    def backtest_progress(
        self: StatementRunner, runner: str, job_id: int, done_ms: int, now_ms: int
    ) -> None:
        """The running job's progress; every unfinished job of `runner` is still held."""
        self._run_many(
            "backtest progress",
            [
                ("UPDATE backtests SET done_ms = ? WHERE id = ?", [(done_ms, job_id)]),
                (
                    "UPDATE backtests SET beat_ms = ? WHERE runner = ?"
                    " AND state IN ('queued', 'running')",
                    [(now_ms, runner)],
                ),
            ],
        )

    def backtest_finished(
        self: StatementRunner,
        job_id: int,
        *,
        report: dict[str, Any] | None,
        positions: int,
        error: str | None,
        now_ms: int,
    ) -> None:
        """`done` with its report, or `failed` with the reason (`error`)."""
        self._run(
            "finish backtest",
            "UPDATE backtests SET state = ?, report = ?, positions = ?, error = ?,"
            " finished_ms = ?, beat_ms = ? WHERE id = ? AND state IN ('queued', 'running')",
            (
                "failed" if error is not None else "done",
                None if report is None else json.dumps(report, ensure_ascii=False),
                positions, error, now_ms, now_ms, job_id,
            ),
        )  # fmt: skip

    def interrupt_stale_backtests(self: StatementRunner, before_ms: int, now_ms: int) -> int:
        """Fails every unfinished job whose runner last beat before `before_ms` (it stopped);
        returns how many."""
        return self._run(
            "interrupt backtests",
            "UPDATE backtests SET state = 'failed', error = ?, finished_ms = ?"
            " WHERE state IN ('queued', 'running') AND beat_ms < ?",
            (INTERRUPTED, now_ms, before_ms),
        ).rowcount

    def interrupt_runner_backtests(self: StatementRunner, runner: str, now_ms: int) -> int:
        """Fails the unfinished jobs of `runner` (a process stopping)."""
        return self._run(
            "interrupt backtests",
            "UPDATE backtests SET state = 'failed', error = ?, finished_ms = ?"
            " WHERE state IN ('queued', 'running') AND runner = ?",
            (INTERRUPTED, now_ms, runner),
        ).rowcount
