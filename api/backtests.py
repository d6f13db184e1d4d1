"""Backtests the API runs: one at a time on a thread of their own, the rest queued, the last
few kept in memory with their progress and report (a restart forgets them).

A job reads the store through its own connection (`StoreAccess.open`) so that a month of
history does not hold one of the request pool's stores for minutes.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from alerts.model import format_time
from api.stores import StoreAccess
from pipeline.backtest import report
from pipeline.history import backtest
from pipeline.thresholds import RuleBook

log = logging.getLogger(__name__)
KEEP = 50  # finished jobs kept; the oldest go first
MAX_QUEUED = 8


@dataclass
class Job:
    id: int
    since_ms: int
    until_ms: int
    rules: RuleBook
    rules_text: str | None
    tolerance_ms: int
    requested_by: str
    created_ms: int
    state: str = "queued"  # queued, running, done, failed
    done_ms: int = 0  # data time covered
    positions: int = 0
    started_ms: int | None = None
    finished_ms: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        total = max(1, self.until_ms - self.since_ms)
        body: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "since": format_time(self.since_ms),
            "until": format_time(self.until_ms),
            "rules": self.rules_text,
            "tolerance_h": self.tolerance_ms / 3_600_000,
            "requested_by": self.requested_by,
            "created": format_time(self.created_ms),
            "started": None if self.started_ms is None else format_time(self.started_ms),
            "finished": None if self.finished_ms is None else format_time(self.finished_ms),
            "progress": {
                "fraction": 1.0 if self.state == "done" else round(self.done_ms / total, 4),
                "positions": self.positions,
            },
            "error": self.error,
        }
        if self.result is not None:
            body["report"] = self.result
        return body


class QueueFull(RuntimeError):
    pass


class Backtests:
    def __init__(self, stores: StoreAccess) -> None:
        self._stores = stores
        self._jobs: OrderedDict[int, Job] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(
        self,
        since_ms: int,
        until_ms: int,
        rules: RuleBook,
        rules_text: str | None,
        tolerance_ms: int,
        who: str,
        now_ms: int,
    ) -> Job:
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.state == "queued")
            if waiting >= MAX_QUEUED:
                raise QueueFull(f"{waiting} backtests are waiting already")
            job = Job(next(self._ids), since_ms, until_ms, rules, rules_text, tolerance_ms, who,
                      now_ms)  # fmt: skip
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
            for old in finished[: max(0, len(self._jobs) - KEEP)]:
                del self._jobs[old]
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="backtests", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        job.state, job.started_ms = "running", _now_ms()

        def progress(done_ms: int, total_ms: int) -> None:
            job.done_ms = done_ms

        try:
            store = self._stores.open()
            try:
                found = backtest(
                    store, job.since_ms, job.until_ms, job.rules,
                    tolerance_ms=job.tolerance_ms, progress=progress,
                )  # fmt: skip
            finally:
                store.close()
            job.positions = found.run.positions
            job.result = report(found.diffs, job.since_ms, job.until_ms, found.run.positions)
            job.state = "done"
        except Exception as exc:  # a job's failure is its answer, never the server's
            log.warning("backtest %d failed: %s", job.id, exc)
            job.state, job.error = "failed", " ".join(str(exc).split()) or type(exc).__name__
        job.finished_ms = _now_ms()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
