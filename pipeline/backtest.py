"""Backtest: the engine over stored history, and which alerts new thresholds add and remove.

`run_history` feeds pages of stored positions (each a batch and the terminals its device column
indexes, grouped by device in fix-time order, pages in time order) through an engine and ends
the input at the latest receive time seen, as a replay does. The engine starts without state at
the first page: what it learns (homes, alarm bits already on) it learns from the window.

`compare` sets those alerts against the ones that fired (the alerts table) per type: an alert of
the same type, vehicle and fence within `tolerance_ms` of a fired one is the same incident
(`kept` at the same time, `moved` otherwise); the rest are `added` (new only) or `removed`
(fired only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alerts.model import Alert, AlertType, format_time
from pipeline.engine import Engine
from positions import PositionBatch

HOUR_MS = 3_600_000
ENGINE_ROWS = 65_536
DEFAULT_TOLERANCE_MS = 6 * HOUR_MS
# Raised outside the engine (the gateway): a backtest neither produces nor removes them.
NOT_THE_ENGINES = frozenset({AlertType.DEVICE_CONFLICT})


@dataclass(slots=True)
class HistoryRun:
    alerts: list[Alert] = field(default_factory=list)
    positions: int = 0
    latest_ms: int = 0
    flagged: dict[str, int] = field(default_factory=dict)


def run_history(
    engine: Engine,
    pages: Iterable[tuple[PositionBatch, Sequence[str]]],
    progress: Callable[[int], None] | None = None,
) -> HistoryRun:
    """Every page through `engine`, then the end of input. `progress(positions_so_far)` after
    each page."""
    run = HistoryRun()
    gathering = engine.gathering
    if gathering is not None:
        gathering.defer = True  # evaluated once every car's visits are in, as replay does
    engine.receive_times = True
    index_of = engine.devices.index_of
    for batch, terminals in pages:
        if len(batch) == 0:
            continue
        mapping = np.fromiter((index_of(t) for t in terminals), np.int32, len(terminals))
        columns = {**batch.columns(), "device": mapping[batch.device]}
        # The engine works on batches of ENGINE_ROWS (its columns stay in the CPU cache); a
        # cut anywhere keeps each device's rows in order, and the alerts do not depend on it.
        for start in range(0, len(batch), ENGINE_ROWS):
            part = {k: v[start : start + ENGINE_ROWS] for k, v in columns.items()}
            run.alerts += engine.process(PositionBatch(**part))
        run.positions += len(batch)
        run.latest_ms = max(run.latest_ms, int(batch.recv_ms.max()))
        if progress is not None:
            progress(run.positions)
    run.alerts += engine.finish(run.latest_ms)
    if gathering is not None:
        run.alerts += gathering.propose(gathering.visits)
    run.alerts.sort(key=Alert.sort_key)
    run.flagged = engine.pre.counts.as_dict()
    return run


@dataclass(slots=True)
class TypeDiff:
    type: str
    fired: int = 0
    new: int = 0
    kept: int = 0
    moved: list[tuple[Alert, Alert]] = field(default_factory=list)  # (fired, new)
    added: list[Alert] = field(default_factory=list)
    removed: list[Alert] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "fired": self.fired, "new": self.new, "kept": self.kept, "moved": len(self.moved),
            "added": len(self.added), "removed": len(self.removed),
        }  # fmt: skip


def compare(
    fired: Sequence[Alert], new: Sequence[Alert], tolerance_ms: int = DEFAULT_TOLERANCE_MS
) -> list[TypeDiff]:
    """Per alert type (sorted by name), what `new` adds and removes against `fired`."""
    diffs: dict[str, TypeDiff] = {}
    groups: dict[tuple[str, str, str], tuple[list[Alert], list[Alert]]] = {}
    for side, alerts in ((0, fired), (1, new)):
        for a in alerts:
            if a.type in NOT_THE_ENGINES:
                continue
            diff = diffs.setdefault(a.type.value, TypeDiff(a.type.value))
            if side == 0:
                diff.fired += 1
            else:
                diff.new += 1
            groups.setdefault((a.type.value, a.vehicle_id, a.fence_id or ""), ([], []))[
                side
            ].append(a)
    for (kind, _, _), (was, now) in sorted(groups.items()):
        diff = diffs[kind]
        was = sorted(was, key=lambda a: a.time_ms)
        left = sorted(now, key=lambda a: a.time_ms)
        unmatched: list[Alert] = []
        for old in was:  # exact times first: the same incident at the same moment
            same = next((a for a in left if a.time_ms == old.time_ms), None)
            if same is not None:
                left.remove(same)
                diff.kept += 1
            else:
                unmatched.append(old)
        for old in unmatched:
            near = min(left, key=lambda a: abs(a.time_ms - old.time_ms), default=None)
            if near is not None and abs(near.time_ms - old.time_ms) <= tolerance_ms:
                left.remove(near)
                diff.moved.append((old, near))
            else:
                diff.removed.append(old)
        diff.added += left
    return [diffs[k] for k in sorted(diffs)]


def report(
    diffs: Sequence[TypeDiff], since_ms: int, until_ms: int, positions: int
) -> dict[str, Any]:
    """The comparison as JSON: counts per type, then the alerts added, removed and moved."""
    return {
        "since": format_time(since_ms),
        "until": format_time(until_ms),
        "positions": positions,
        "by_type": {d.type: d.counts() for d in diffs},
        "added": [a.to_json() for d in diffs for a in d.added],
        "removed": [a.to_json() for d in diffs for a in d.removed],
        "moved": [
            {
                "fired": old.to_json(),
                "new": now.to_json(),
                "shift_s": (now.time_ms - old.time_ms) // 1000,
            }
            for d in diffs
            for old, now in d.moved
        ],
    }
