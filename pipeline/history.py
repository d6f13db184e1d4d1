"""The store side of a backtest: an engine set up as the live detector would be (the store's
fleet, loan states and fences), stored positions in pages through it, and the alerts that
fired over the same time (pipeline.backtest compares them).

A backtest of one unit (`scope`, a tenant's officer) sees that unit's subtree alone: its cars
(devices of the subtree) and their positions, the fences that apply to them (the subtree's and
those of the units above it, the platform's spot library among them) and the alerts of the
subtree. `gathering` then finds places the subtree's own cars gather at."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from alerts.model import Alert
from geofence import load_fences
from organizations import ROOT_PATH, Scope
from pipeline.backtest import DEFAULT_TOLERANCE_MS, HistoryRun, TypeDiff, compare, run_history
from pipeline.engine import Engine
from pipeline.live import fleet_from_devices
from pipeline.thresholds import RuleBook
from positions import PositionBatch
from store.fencerows import feature_collection
from store.history import pages, prefetched
from store.interface import Store

ALERT_PAGE = 1000


def _in_scope(store: Store, scope: Scope | None) -> Callable[[int], bool]:
    """Whether a record of a unit is in `scope` (everything for None or the root)."""
    if scope is None or scope.is_root:
        return lambda org: True
    return lambda org: scope.contains(store.org_path(org) or ROOT_PATH)


def engine_from_store(store: Store, rules: RuleBook, scope: Scope | None = None) -> Engine:
    """An engine with the store's fleet and fences, as seen from `scope` (all for None)."""
    states = {vehicle: state.value for vehicle, state in store.loan_states().items()}
    inside = _in_scope(store, scope)
    stored = store.list_fences()
    if scope is not None and not scope.is_root:
        # The subtree's fences and those above it (whose cars include the subtree's).
        stored = [
            f for f in stored
            if inside(f.org) or scope.path.startswith(store.org_path(f.org) or ROOT_PATH)
        ]  # fmt: skip
    fences = load_fences(feature_collection(stored), name="store")
    devices = [d for d in store.list_devices() if inside(d.org)]
    return Engine(fleet=fleet_from_devices(devices, states), rules=rules, fences=fences)


def fired_alerts(
    store: Store, since_ms: int, until_ms: int, scope: Scope | None = None
) -> list[Alert]:
    """The stored alerts dated in [since_ms, until_ms) (of the subtree of `scope`)."""
    out: list[Alert] = []
    after = 0
    while True:
        page = store.list_alerts(since_ms=since_ms, after_id=after, limit=ALERT_PAGE, scope=scope)
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
    scope: Scope | None = None,
) -> Backtest:
    """Runs `rules` over [since_ms, until_ms) of stored history and compares with what fired.
    `progress(done_ms, total_ms)`: data time covered so far. `scope`: one unit's subtree only
    (its devices' positions, the fences reaching them, its alerts)."""
    engine = engine_from_store(store, rules, scope)
    total = until_ms - since_ms
    mine: set[str] | None = None
    if scope is not None and not scope.is_root:
        inside = _in_scope(store, scope)
        mine = {d.terminal for d in store.list_devices() if inside(d.org)}

    def windows() -> Iterator[tuple[PositionBatch, list[str]]]:
        for window in prefetched(pages(store, since_ms, until_ms)):
            batch, terminals = window.page.batch, window.page.terminals
            if mine is not None:
                keep = np.fromiter((t in mine for t in terminals), np.bool_, len(terminals))
                batch = batch.take(np.flatnonzero(keep[batch.device]))
            yield batch, terminals
            if progress is not None:
                progress(window.to_ms - since_ms, total)

    run = run_history(engine, windows())
    new = [a for a in run.alerts if since_ms <= a.time_ms < until_ms]
    run.alerts = new
    fired = fired_alerts(store, since_ms, until_ms, scope)
    return Backtest(run, compare(fired, new, tolerance_ms))
