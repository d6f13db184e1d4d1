"""Batches the live detector is too far behind to hold in memory, parked on local disk.

The gateway hands every durable batch to the detector; when the detector falls behind by
more rows than it may hold, dropping them would blind it (a power cut missed for good). They
go to a spill file instead, in arrival order, as raw columns (a row count, then each column's
bytes, `positions.COLUMNS` order), and come back in that order as the detector catches up.
Nothing is fsynced: the file only outlives memory pressure, not the process (positions are
durable in the journal and store; a restart starts detection afresh). The file is truncated
whenever it has been read to its end, so it never holds more than the backlog.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path

import numpy as np

from positions import COLUMNS, PositionBatch

_ROW_BYTES = sum(dtype.itemsize for dtype in COLUMNS.values())
_HEADER = np.dtype("<i8")


class BatchSpill:
    """An on-disk FIFO of position batches; `put` and `take` may run on different threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w+b")  # a fresh file: what a previous process left is moot
        self._lock = threading.Lock()
        self._sizes: deque[int] = deque()
        self._read_at = 0
        self.rows = 0  # rows spilled and not yet taken
        self.spilled_rows = 0  # ever

    def put(self, batch: PositionBatch) -> None:
        """Appends `batch`; raises OSError when the disk refuses (nothing half-written stays)."""
        parts = [np.array([len(batch)], _HEADER).tobytes()]
        parts += [getattr(batch, name).tobytes() for name in COLUMNS]
        data = b"".join(parts)
        with self._lock:
            end = self._file.seek(0, os.SEEK_END)
            try:
                self._file.write(data)
                self._file.flush()
            except OSError:
                self._file.truncate(end)
                raise
            self._sizes.append(len(batch))
            self.rows += len(batch)
            self.spilled_rows += len(batch)

    def take(self) -> PositionBatch:
        """The oldest batch spilled (IndexError when there is none)."""
        with self._lock:
            n = self._sizes.popleft()
            self._file.seek(self._read_at)
            data = self._file.read(_HEADER.itemsize + n * _ROW_BYTES)
            self._read_at += len(data)
            columns: dict[str, np.ndarray] = {}
            offset = _HEADER.itemsize
            for name, dtype in COLUMNS.items():
                columns[name] = np.frombuffer(data, dtype, n, offset).copy()
                offset += n * dtype.itemsize
            self.rows -= n
            if not self._sizes:
                self._file.truncate(0)
                self._read_at = 0
            return PositionBatch(**columns)

    def close(self) -> None:
        with self._lock:
            self._file.close()
            self.path.unlink(missing_ok=True)
