"""Which devices' clock states a write must store: the states come from
`trajectory.clock_rows` (pure); the store skips devices whose state and offset it wrote last and
still holds (`ClockCache`), since most writes change nobody's clock.
"""

from __future__ import annotations

import time

import numpy as np

from trajectory.clock_rows import ClockRows

# How long a remembered state is trusted: another process (a second gateway's drain) may have
# written the device's clock meanwhile.
CACHE_S = 300.0


class ClockCache:
    """The (state, offset) last written per device key, forgotten after CACHE_S."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[int, int]] = {}
        self._since = time.monotonic()

    def changed(self, rows: ClockRows) -> ClockRows:
        """The entries whose state or offset differs from what was last written."""
        if time.monotonic() - self._since > CACHE_S:
            self._known.clear()
            self._since = time.monotonic()
        known = self._known
        keep = [
            i
            for i, (d, s, o) in enumerate(
                zip(rows.device.tolist(), rows.state.tolist(), rows.offset_ms.tolist(), strict=True)
            )
            if known.get(d) != (s, o)
        ]
        return rows.take(np.asarray(keep, dtype=np.intp))

    def remember(self, rows: ClockRows) -> None:
        """After a committed write of `rows`."""
        for d, s, o in zip(
            rows.device.tolist(), rows.state.tolist(), rows.offset_ms.tolist(), strict=True
        ):
            self._known[d] = (s, o)

    def forget(self) -> None:
        """After a failed write: nothing is known any more."""
        self._known.clear()
