"""`power_cut` and `antenna_cut`: an alarm bit of the JT808 alarm word going from 0 to 1.

Every report counts, valid fix or not. A device's first report has no earlier word; by default
its bit counts as a rise (a unit already cut when first seen is still an incident to act on).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from trajectory.segments import Ints, first_of_device, last_of_device
from trajectory.state import grown

POWER_CUT_BIT = 8
ANTENNA_CUT_BIT = 5


@dataclass
class AlarmBitRule:
    """Carries each device's last value of one alarm bit (-1: no report yet)."""

    bit: int
    first_report_counts: bool = True
    last: npt.NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, np.int8))

    def ensure(self, n_devices: int) -> None:
        self.last = grown(self.last, n_devices, -1)

    def rises(self, device: Ints, alarm: npt.NDArray[np.uint32]) -> npt.NDArray[np.intp]:
        """Rows (grouped by device, time order) where the bit goes from 0 to 1."""
        if len(device) == 0:
            return np.zeros(0, np.intp)
        bit = ((alarm >> np.uint32(self.bit)) & np.uint32(1)).astype(np.int8)
        first = first_of_device(device)
        prev = np.empty_like(bit)
        prev[1:] = bit[:-1]
        carried = self.last[device[first]]
        if self.first_report_counts:
            carried = np.where(carried < 0, 0, carried).astype(np.int8)
        prev[first] = carried
        last = last_of_device(device)
        self.last[device[last]] = bit[last]
        return np.flatnonzero((bit == 1) & (prev == 0))
