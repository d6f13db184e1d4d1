"""Backtests the API runs: one at a time on a thread of their own, the rest queued; every job
is a row of the store (`store.backtest_jobs`), so its state, progress and report outlive the
process, and any API process answers it.

A job reads the store through its own connection (`StoreAccess.open`) so that a month of
history does not hold one of the request pool's stores for minutes. A beat thread writes the
running job's progress and says this process still holds its jobs (every `BEAT_S`); a job whose
process stopped beating (it stopped or restarted) can never finish, and reads as `failed` with
the reason once `STALE_MS` have passed (`store.scoped.backtests`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from alerts.model import format_time
from api.stores import StoreAccess
from organizations import Scope
from pipeline.backtest import report
from pipeline.history import backtest
from pipeline.thresholds import RuleBook
from store.backtest_jobs import BacktestRecord

log = logging.getLogger(__name__)
MAX_QUEUED = 8  # per API process
BEAT_S = 2.0
STALE_MS = 60_000  # a job whose process has not beaten for this long was interrupted


def job_json(job: BacktestRecord) -> dict[str, Any]:
    total = max(1, job.until_ms - job.since_ms)
    body: dict[str, Any] = {
        "id": job.id,
        "org": job.org,
        "state": job.state,
        "since": format_time(job.since_ms),
        "until": format_time(job.until_ms),
        "rules": job.rules,
        "tolerance_h": job.tolerance_ms / 3_600_000,
        "requested_by": job.requested_by,
        "created": format_time(job.created_ms),
        "started": None if job.started_ms is None else format_time(job.started_ms),
        "finished": None if job.finished_ms is None else format_time(job.finished_ms),
        "progress": {
            "fraction": 1.0 if job.state == "done" else round(min(job.done_ms, total) / total, 4),
            "positions": job.positions,
        },
        "error": job.error,
    }
    if job.report is not None:
        body["report"] = job.report
    return body


@dataclass
class Work:
    """A queued job as this process runs it: the row's id, what it covers, its thresholds."""

    id: int
    since_ms: int
    until_ms: int
    rules: RuleBook
    tolerance_ms: int
    scope: Scope
    done_ms: int = field(default=0)


class QueueFull(RuntimeError):
    pass


class Backtests:
    def __init__(self, stores: StoreAccess) -> None:
        self._stores = stores
        self.runner = f"api-{uuid.uuid4().hex[:12]}"  # this process, as the job rows name it
        self._lock = threading.Lock()
        self._queue: queue.Queue[Work | None] = queue.Queue()
        self._waiting = 0
        self._running: Work | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def reserve(self) -> None:
        """Takes a place in the queue before the job's row is written; QueueFull when
        `MAX_QUEUED` wait already."""
        with self._lock:
            if self._waiting >= MAX_QUEUED:
                raise QueueFull(f"{self._waiting} backtests are waiting already")
            self._waiting += 1

    def release(self) -> None:
        """Gives back a place taken by `reserve` that no job used."""
        with self._lock:
            self._waiting -= 1

    def submit(self, work: Work) -> None:
        """Queues a job whose row exists (after `reserve`)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="backtests", daemon=True)
                self._thread.start()
                threading.Thread(target=self._beat, name="backtest-beat", daemon=True).start()
        self._queue.put(work)

    def close(self) -> None:
        self._stop.set()
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            with self._lock:
                self._waiting -= 1
                self._running = work
            try:
                self._run(work)
            finally:
                with self._lock:
                    self._running = None

    def _beat(self) -> None:
        """The running job's progress, and this process still holding its jobs."""
        store = None
        while not self._stop.wait(BEAT_S):
            with self._lock:
                running = self._running
                idle = running is None and self._waiting == 0
            if idle:
                continue
            try:
                if store is None:
                    store = self._stores.open()
                job_id, done = (0, 0) if running is None else (running.id, running.done_ms)
                store.backtest_progress(self.runner, job_id, done, now_ms())
            except Exception as exc:  # the database may be away for a moment: beat again
                log.warning("backtest beat: %s", exc)
                if store is not None:
                    store.close()
                store = None

    def _run(self, work: Work) -> None:
        def progress(done_ms: int, total_ms: int) -> None:
            work.done_ms = done_ms

        result: dict[str, Any] | None = None
        positions, error = 0, None
        try:
            store = self._stores.open()
            try:
                store.backtest_started(work.id, now_ms())
                found = backtest(
                    store, work.since_ms, work.until_ms, work.rules,
                    tolerance_ms=work.tolerance_ms, progress=progress, scope=work.scope,
                )  # fmt: skip
                positions = found.run.positions
                result = report(found.diffs, work.since_ms, work.until_ms, positions)
            finally:
                store.close()
        except Exception as exc:  # a job's failure is its answer, never the server's
            log.warning("backtest %d failed: %s", work.id, exc)
            error = " ".join(str(exc).split()) or type(exc).__name__
        self._finish(work, result, positions, error)

    def _finish(
        self, work: Work, result: dict[str, Any] | None, positions: int, error: str | None
    ) -> None:
        """Writes the outcome; retried while the database is away (the beat keeps the job)."""
        for attempt in range(30):
            try:
                store = self._stores.open()
                try:
                    store.backtest_finished(
                        work.id, report=result, positions=positions, error=error,
                        now_ms=now_ms(),
                    )  # fmt: skip
                    return
                finally:
                    store.close()
            except Exception as exc:
                log.warning("backtest %d: result not stored (%s), retrying", work.id, exc)
                time.sleep(min(10.0, 0.5 * (attempt + 1)))


def now_ms() -> int:
    """Wall time: jobs beat on it (their state outlives any test clock)."""
    return time.time_ns() // 1_000_000
