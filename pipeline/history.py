"""The store side of a backtest: an engine set up as the live detector would be (the store's
fleet, loan states and fences), stored positions in pages through it, and the alerts that
fired over the same time (pipeline.backtest compares them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from alerts.model import Alert
from geofence import load_fences
from pipeline.backtest import DEFAULT_TOLERANCE_MS, HistoryRun, TypeDiff, compare, run_history
from pipeline.engine import Engine
from pipeline.live import fleet_from_devices
from pipeline.thresholds import RuleBook
from positions import PositionBatch
from store.fencerows import feature_collection
from store.history import pages, prefetched
from store.interface import Store

ALERT_PAGE = 1000


def engine_from_store(store: Store, rules: RuleBook) -> Engine:
    states = {vehicle: state.value for vehicle, state in store.loan_states().items()}
    fences = load_fences(feature_collection(store.list_fences()), name="store")
    return Engine(
        fleet=fleet_from_devices(store.list_devices(), states), rules=rules, fences=fences
    )


def fired_alerts(store: Store, since_ms: int, until_ms: int) -> list[Alert]:
    """The stored alerts dated in [since_ms, until_ms)."""
    out: list[Alert] = []
    after = 0
    while True:
        page = store.list_alerts(since_ms=since_ms, after_id=after, limit=ALERT_PAGE)
        out += [s.alert for s in page if s.alert.time_ms < until_ms]
        if len(page) < ALERT_PAGE:
            return out
        after = page[-1].id


@dataclass(frozen=True, slots=True)
class Backtest:
    run: HistoryRun
    diffs: list[TypeDiff]


def backtest(
    store: Store,
    since_ms: int,
    until_ms: int,
    rules: RuleBook,
    *,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
    progress: Callable[[int, int], None] | None = None,
) -> Backtest:
    """Runs `rules` over [since_ms, until_ms) of stored history and compares with what fired.
    `progress(done_ms, total_ms)`: data time covered so far."""
    engine = engine_from_store(store, rules)
    total = until_ms - since_ms

    def windows() -> Iterator[tuple[PositionBatch, list[str]]]:
        for window in prefetched(pages(store, since_ms, until_ms)):
            yield window.page.batch, window.page.terminals
            if progress is not None:
                progress(window.to_ms - since_ms, total)

    run = run_history(engine, windows())
    new = [a for a in run.alerts if since_ms <= a.time_ms < until_ms]
    run.alerts = new
    return Backtest(run, compare(fired_alerts(store, since_ms, until_ms), new, tolerance_ms))
