"""When each device was last heard: the receive times the silence rules run on.

Live, a device is silent when its reports stop arriving, whatever fix times they carry (contracts
section 3): `offline`, `all_devices_offline` and `partial_offline` read receive times. A row is
talk when its fix is new to the rules (a report) or when it arrived after everything the device
sent before: a backfilled or late fix is the device talking all the same. A talk row's time is
the device's newest receive time so far, so the times the rules see never go back. In replay
without a `received` column the receive time is the fix time, and talk is exactly the reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trajectory.segments import Ints, last_of_device, running_max
from trajectory.state import grown, held

NEVER = np.iinfo(np.int64).min


@dataclass
class Heard:
    """Per device: the newest receive time of any row (NEVER before the first)."""

    last_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def ensure(self, n_devices: int) -> None:
        self.last_ms = grown(self.last_ms, n_devices, NEVER)

    def talk(
        self,
        device: Ints,
        recv_ms: npt.NDArray[np.int64],
        report: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
        """(talk rows, their times) of rows grouped by device in arrival order; `report` marks
        the rows the rules take as reports."""
        if len(device) == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.int64)
        self.ensure(int(device.max()) + 1)
        before, upto = running_max(device, recv_ms, self.last_ms)
        rows = np.flatnonzero(report | (recv_ms > before))
        last = last_of_device(device)
        self.last_ms[device[last]] = upto[last]
        return rows, upto[rows]

    def hold(self, from_ms: int, to_ms: int) -> None:
        """No time from `from_ms` to `to_ms` counts towards a silence (`state.held`)."""
        held(self.last_ms, self.last_ms != NEVER, from_ms, to_ms)

    def through_ms(self, n_devices: int) -> npt.NDArray[np.float64]:
        """Per device: its newest receive time (-inf before any)."""
        self.ensure(n_devices)
        seen = self.last_ms[:n_devices].astype(np.float64)
        return np.where(self.last_ms[:n_devices] == NEVER, -np.inf, seen)
