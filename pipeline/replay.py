"""Replay: a recorded positions file through the engine, in file order, on the data's clock.

Pure of process concerns (no argument parsing, no exit codes): the command in lienwatch/ reads
the files, calls `replay`, and writes what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from alerts.model import Alert
from pipeline.csv_positions import CsvPositions, RowError
from pipeline.engine import Engine
from positions import DeviceIndex, PositionBatch

BATCH_ROWS = 262_144


@dataclass(frozen=True, slots=True)
class ReplayResult:
    alerts: list[Alert]
    positions: int
    errors: list[RowError] = field(default_factory=list)
    flagged: dict[str, int] = field(default_factory=dict)
    latest_ms: int = 0


def to_batch(rows: CsvPositions, devices: DeviceIndex) -> PositionBatch:
    """CSV columns as a position batch; replay has no receive time, so it is the fix time."""
    return PositionBatch(
        device=rows.device_index(devices),
        time_ms=rows.time_ms,
        recv_ms=rows.time_ms,
        lon=rows.lon,
        lat=rows.lat,
        speed_kmh=rows.speed_kmh,
        course=rows.course,
        altitude_m=np.zeros(len(rows), np.int32),
        alarm=rows.alarm,
        status=rows.status,
        flags=np.zeros(len(rows), np.uint16),
    )


def replay(
    rows: CsvPositions,
    engine: Engine,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Runs every row in file order, then advances the clock to the latest time in the file.
    `progress(rows_done, rows_total)` is called after each batch."""
    batch = to_batch(rows, engine.devices)
    alerts: list[Alert] = []
    columns = batch.columns()
    total = len(batch)
    for start in range(0, total, batch_rows):
        part = {name: column[start : start + batch_rows] for name, column in columns.items()}
        alerts += engine.process(PositionBatch(**part))
        if progress is not None:
            progress(min(start + batch_rows, total), total)
    latest = int(rows.time_ms.max()) if len(rows) else 0
    alerts += engine.finish(latest)
    alerts.sort(key=Alert.sort_key)
    return ReplayResult(alerts, len(rows), list(rows.errors), engine.pre.counts.as_dict(), latest)


def write_alerts(alerts: Iterable[Alert], out: TextIO) -> None:
    """ALERTS.jsonl: one JSON object per line, in the order given."""
    out.writelines(json.dumps(alert.to_json(), ensure_ascii=False) + "\n" for alert in alerts)
