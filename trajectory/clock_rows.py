"""Each device's clock state as of its latest row in a batch: what the store keeps per device
(`device_clocks`) and the API reads back.

A row's state comes from its flags and its two times (`trajectory.clock.row_states`); a
device's is that of its latest row by receive time, with `since` the receive time of the first
row of its trailing run of that state in the batch (`whole` when the run is the whole batch: a
stored state that equals it then keeps its own `since`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from positions import PositionBatch
from trajectory.clock import ClockState, row_states
from trajectory.segments import first_of_device, last_of_device, latest_marker


@dataclass(frozen=True, slots=True)
class ClockRows:
    """One entry per device: `device` indexes the batch's terminal list until `keyed`."""

    device: npt.NDArray[np.int64]
    state: npt.NDArray[np.int8]
    offset_ms: npt.NDArray[np.int64]
    since_ms: npt.NDArray[np.int64]
    seen_ms: npt.NDArray[np.int64]
    whole: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.device)

    def take(self, index: npt.NDArray[np.intp]) -> ClockRows:
        return ClockRows(
            self.device[index],
            self.state[index],
            self.offset_ms[index],
            self.since_ms[index],
            self.seen_ms[index],
            self.whole[index],
        )

    def keyed(self, keys: npt.ArrayLike) -> ClockRows:
        """The same entries with `device` mapped through the store's device keys."""
        mapped = np.asarray(keys, dtype=np.int64)[self.device]
        return ClockRows(
            mapped, self.state, self.offset_ms, self.since_ms, self.seen_ms, self.whole
        )

    def lists(self) -> tuple[list[int], list[int], list[int], list[int], list[int], list[bool]]:
        return (
            self.device.tolist(),
            self.state.tolist(),
            self.offset_ms.tolist(),
            self.since_ms.tolist(),
            self.seen_ms.tolist(),
            self.whole.tolist(),
        )


def clock_rows(batch: PositionBatch) -> ClockRows:
    """Each device's clock state as of its latest row in `batch` (see the module docstring)."""
    if not len(batch):
        z = np.zeros(0, np.int64)
        return ClockRows(z, np.zeros(0, np.int8), z, z, z, np.zeros(0, np.bool_))
    order = np.lexsort((batch.recv_ms, batch.device))
    device = batch.device[order]
    recv = batch.recv_ms[order]
    code = row_states(batch.flags[order], batch.time_ms[order], batch.device_time_ms[order])
    usable = code <= ClockState.ROLLOVER
    offset = np.where(usable, batch.time_ms[order], recv) - batch.device_time_ms[order]
    first = first_of_device(device)
    last = last_of_device(device)
    change = first.copy()
    change[1:] |= code[1:] != code[:-1]
    anchor = latest_marker(change)[last]
    return ClockRows(
        device[last].astype(np.int64),
        code[last],
        offset[last],
        recv[anchor],
        recv[last],
        first[anchor],
    )
