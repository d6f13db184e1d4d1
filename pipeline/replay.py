"""Replay: a recorded positions file through the engine, in file order, on the data's clock.

Pure of argument parsing and exit codes: the command in lienwatch/ reads the files, calls
`replay`, and writes what it returns. Vehicles are independent, so a large file is split by
vehicle over a few processes (forked, so the parsed columns and the fence index are shared
copy-on-write); each runs its vehicles' rows in file order, in batches of its own rows (the
engine's alerts do not depend on where batches are cut), and the merged alerts, sorted on the
same key, are the ones a single process gives.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from alerts.model import Alert
from pipeline.csv_positions import CsvPositions, RowError
from pipeline.engine import Engine, device_order
from positions import DeviceIndex, PositionBatch
from trajectory.clock import DeviceClocks
from trajectory.gathering import Visit

BATCH_ROWS = 65_536  # rows per batch of each process (see `_run`)
# Below this many rows a second process costs more than it saves.
PARALLEL_MIN_ROWS = 100_000
AUTO_WORKERS = 2

Progress = Callable[[int, int], None]


class ReplayWorkerError(RuntimeError):
    """A replay process failed; its partition's alerts are missing, so there is no result."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    alerts: list[Alert]
    positions: int
    errors: list[RowError] = field(default_factory=list)
    flagged: dict[str, int] = field(default_factory=dict)
    latest_ms: int = 0


def to_batch(rows: CsvPositions, devices: DeviceIndex) -> PositionBatch:
    """CSV columns as a position batch; without a `received` column the fix time stands in
    for the receive time."""
    return PositionBatch(
        device=rows.device_index(devices),
        time_ms=rows.time_ms,
        recv_ms=rows.time_ms if rows.recv_ms is None else rows.recv_ms,
        device_time_ms=rows.time_ms,
        lon=rows.lon,
        lat=rows.lat,
        speed_kmh=rows.speed_kmh,
        course=rows.course,
        altitude_m=_constant(0, np.int32, len(rows)),
        alarm=rows.alarm,
        status=rows.status,
        flags=_constant(0, np.uint16, len(rows)),
    )


def _constant(value: int, dtype: type[np.generic], n: int) -> npt.NDArray[Any]:
    """A read-only column of one value, stored once (stride 0): `_gather` slices it."""
    return np.broadcast_to(np.array([value], dtype), (n,))


def _gather(
    columns: dict[str, npt.NDArray[Any]], rows: npt.NDArray[np.intp]
) -> dict[str, npt.NDArray[Any]]:
    """The batch's columns at `rows`: a column shared by two fields (replay's receive time is
    the fix time) is gathered once, and a constant one is sliced, not gathered."""
    done: dict[int, npt.NDArray[Any]] = {}
    part: dict[str, npt.NDArray[Any]] = {}
    for name, column in columns.items():
        key = id(column)
        if key not in done:
            done[key] = column[: len(rows)] if column.strides[0] == 0 else column[rows]
        part[name] = done[key]
    return part


def worker_count(requested: int | None, rows: int) -> int:
    """Processes to use: `requested` (None: automatic, AUTO_WORKERS for a large file on a
    machine with more than one CPU); always 1 where fork is not the safe default (not Linux)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 1
    if requested is not None:
        return max(1, requested)
    if rows <= PARALLEL_MIN_ROWS:
        return 1
    return max(1, min(AUTO_WORKERS, os.cpu_count() or 1))


def replay(
    rows: CsvPositions,
    engine: Engine,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
    workers: int | None = None,
) -> ReplayResult:
    """Runs every row in file order, then advances the clock to the latest time in the file
    (the latest receive time when the file gives them: then device clocks are corrected as
    the gateway does live, see trajectory.clock). `progress(rows_done, rows_total)` is called
    after each batch. `workers`: see `worker_count`; raises ReplayWorkerError when a forked
    process fails."""
    batch = to_batch(rows, engine.devices)
    engine.receive_times = rows.recv_ms is not None
    if rows.recv_ms is not None and engine.clocks is None:
        engine.clocks = DeviceClocks()
    latest = int(batch.recv_ms.max()) if len(rows) else 0
    n = min(worker_count(workers, len(batch)), max(1, len(batch)))
    gathering = engine.gathering
    if gathering is not None:
        # Cross-vehicle: every process's visits are evaluated together at the end.
        gathering.defer = True
    if n == 1:
        alerts, flagged = _run(engine, batch, None, batch_rows, latest, progress)
    else:
        alerts, flagged = _run_forked(engine, batch, n, batch_rows, latest, progress)
    if gathering is not None:
        alerts += gathering.propose(gathering.visits)
        alerts.sort(key=Alert.sort_key)
    return ReplayResult(alerts, len(rows), list(rows.errors), flagged, latest)


def _run(
    engine: Engine,
    batch: PositionBatch,
    keep: npt.NDArray[np.intp] | None,
    batch_rows: int,
    latest: int,
    progress: Progress | None,
) -> tuple[list[Alert], dict[str, int]]:
    """The ascending row indexes `keep` (None: all rows) in batches of `batch_rows` of them,
    then the end of input at `latest`. A batch counts the process's own rows, not the file's,
    so each of several processes works on arrays as small as one process does: the rules'
    column operations run from the CPU cache (a third less CPU than batches twice as large)."""
    alerts: list[Alert] = []
    columns = batch.columns()
    total = len(batch)
    own = total if keep is None else len(keep)
    for start in range(0, own, batch_rows):
        stop = min(start + batch_rows, own)
        if keep is None:
            rows = np.arange(start, stop)
            reached = stop
        else:
            rows = keep[start:stop]
            reached = total if stop == own else int(rows[-1]) + 1
        # Grouped by device here (as the engine would), so the rows are gathered once.
        rows = rows[device_order(columns["device"][rows])]
        alerts += engine.process(PositionBatch(**_gather(columns, rows)))
        if progress is not None:
            progress(reached, total)
    alerts += engine.finish(latest)
    alerts.sort(key=Alert.sort_key)
    flagged = engine.pre.counts.as_dict()
    if engine.clocks is not None:
        flagged.update(engine.clocks.counts.as_dict())
    return alerts, flagged


def partitions(
    vehicle_of_row: npt.NDArray[np.int32], n_vehicles: int, n: int
) -> list[npt.NDArray[np.bool_]]:
    """`n` disjoint vehicle sets balanced by row count (largest first to the lightest set), as
    masks over vehicle indexes; vehicles without rows go to the first set."""
    counts = np.bincount(vehicle_of_row, minlength=n_vehicles)
    load = [0] * n
    masks = [np.zeros(n_vehicles, np.bool_) for _ in range(n)]
    for vehicle in np.argsort(-counts, kind="stable").tolist():
        target = 0 if counts[vehicle] == 0 else load.index(min(load))
        masks[target][vehicle] = True
        load[target] += int(counts[vehicle])
    return masks


def _run_forked(
    engine: Engine,
    batch: PositionBatch,
    n: int,
    batch_rows: int,
    latest: int,
    progress: Progress | None,
) -> tuple[list[Alert], dict[str, int]]:
    """Partition 0 in this process, the others in forked children that send back their alerts
    and flagged counts (pickled through a pipe); merged by a stable sort on the alert key."""
    vehicle_of = engine.register_devices()
    # np.take: fancy indexing with an int32 index (the batch's device column) is slower.
    vehicle_of_row = np.take(vehicle_of, batch.device)
    masks = partitions(vehicle_of_row, len(engine.vehicle_ids), n)
    children: list[tuple[int, int]] = []
    try:
        for mask in masks[1:]:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: only this thread exists here; it never returns
                os.close(read_fd)
                _child(engine, batch, mask, vehicle_of_row, batch_rows, latest, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        keep = np.flatnonzero(np.take(masks[0], vehicle_of_row))
        alerts, flagged = _own_vehicles(
            _run(engine, batch, keep, batch_rows, latest, progress), engine, masks[0]
        )
    finally:
        # Every child is waited for, whatever happened; the first failure is raised after.
        outcomes: list[tuple[list[Alert], dict[str, int], list[Visit]] | ReplayWorkerError] = []
        for pid, fd in children:
            try:
                outcomes.append(_collect(pid, fd))
            except ReplayWorkerError as exc:
                outcomes.append(exc)
    results: list[tuple[list[Alert], dict[str, int], list[Visit]]] = []
    for outcome in outcomes:
        if isinstance(outcome, ReplayWorkerError):
            raise outcome
        results.append(outcome)
    for child_alerts, child_flagged, child_visits in results:
        if engine.gathering is not None:
            engine.gathering.visits += child_visits
        alerts += child_alerts
        for name, count in child_flagged.items():
            flagged[name] = flagged.get(name, 0) + count
    alerts.sort(key=Alert.sort_key)
    return alerts, flagged


def _own_vehicles(
    result: tuple[list[Alert], dict[str, int]], engine: Engine, mask: npt.NDArray[np.bool_]
) -> tuple[list[Alert], dict[str, int]]:
    """The alerts of the partition's own vehicles (a vehicle without rows is in one only)."""
    alerts, flagged = result
    own = {engine.vehicle_ids[v] for v in np.flatnonzero(mask).tolist()}
    return [a for a in alerts if a.vehicle_id in own], flagged


def _child(
    engine: Engine,
    batch: PositionBatch,
    mask: npt.NDArray[np.bool_],
    vehicle_of_row: npt.NDArray[np.int32],
    batch_rows: int,
    latest: int,
    write_fd: int,
) -> None:
    """Runs one partition and leaves with os._exit (no cleanup of the parent's state)."""
    code = 0
    try:
        keep = np.flatnonzero(np.take(mask, vehicle_of_row))
        alerts, flagged = _own_vehicles(
            _run(engine, batch, keep, batch_rows, latest, None), engine, mask
        )
        visits = engine.gathering.visits if engine.gathering is not None else []
        payload = pickle.dumps((True, (alerts, flagged, visits)), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        payload = pickle.dumps((False, traceback.format_exc()))
        code = 1
    try:
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
    finally:
        os._exit(code)


def _collect(pid: int, read_fd: int) -> tuple[list[Alert], dict[str, int], list[Visit]]:
    """A child's result; raises ReplayWorkerError if it failed or sent nothing whole."""
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    try:
        ok, value = pickle.loads(data)
    except Exception:
        raise ReplayWorkerError(
            f"replay process {pid} ended with status {code} and no result"
        ) from None
    if not ok or code != 0:
        raise ReplayWorkerError(f"replay process {pid} failed (status {code}):\n{value}")
    alerts, flagged, visits = value
    return list(alerts), dict(flagged), list(visits)


def write_alerts(alerts: Iterable[Alert], out: TextIO) -> None:
    """ALERTS.jsonl: one JSON object per line, in the order given."""
    out.writelines(json.dumps(alert.to_json(), ensure_ascii=False) + "\n" for alert in alerts)
