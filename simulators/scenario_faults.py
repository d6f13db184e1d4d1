"""Clock faults in a replay scenario (`simulate --scenario-out DIR --faults ...`).

The scenario is generated as usual, in true fix times, and then each faulty device's rows get
what its clock would have sent (the CSV's `time`) and when they would have arrived (its
`received`), from `simulators.faults`:
- `utc` and `rollover` (with a UTC clock too: the rollover devices in the wild are both) run for
  the whole scenario; the platform can correct them, so nothing else changes;
- `reset`, `stuck` and `future` hold for a window of hours placed away from every injected
  episode; those rows have no usable fix time, so the truth evaluates no location rule on them
  (they still count as reports);
- `backfill` is a link lost for hours away from the episodes: the device records on, then sends
  every stored fix at once when the link is back. Its fixes are in order, but it did not talk
  meanwhile: a loss of more than 2 h is a true `offline`, on receive time.
The truth (simulators.truth) reads receive times for silences and leaves the unusable rows out of
the location rules; `faults.jsonl` lists each device's fault and its window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.faults import CLOCK_FAULTS, FUTURE_MS, HOUR_MS, RESET_1980_MS, RESET_2000_MS
from simulators.faults import ROLLOVER_MS as WEEK_ROLLOVER_MS

WINDOW_HOURS = {"reset": (1, 4), "stuck": (1, 3), "future": (1, 3), "backfill": (3, 6)}
MIN_ROWS = 10
TRIES = 40


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One device's fault: its kind and the (true time) window it holds for."""

    device_id: str
    fault: str
    from_ms: int
    to_ms: int


@dataclass(slots=True)
class FaultRows:
    """One device's rows in the order they will be written: true fix times, receive times,
    whether nothing hinges on the row (no episode near), and what the fault makes of them."""

    true_ms: npt.NDArray[np.int64]
    recv_ms: npt.NDArray[np.int64]
    quiet: npt.NDArray[np.bool_]
    device_ms: npt.NDArray[np.int64]
    unusable: npt.NDArray[np.bool_]


def fault_of(index: int, faults: tuple[str, ...]) -> str:
    """The fault the `index`-th device gets ("ok": none): sound clocks and `faults` in turn."""
    cycle = ("ok", *(CLOCK_FAULTS if faults == ("mixed",) else faults))
    return cycle[index % len(cycle)]


def apply_fault(
    kind: str,
    device_id: str,
    index: int,
    rows: FaultRows,
    rng: np.random.Generator,
) -> FaultRecord | None:
    """Applies `kind` to `rows` in place; None when there is no fault or no quiet window."""
    t = rows.true_ms
    if kind == "ok" or not len(t):
        return None
    if kind == "utc":
        rows.device_ms[:] = t - 8 * HOUR_MS
        return FaultRecord(device_id, kind, int(t.min()), int(t.max()))
    if kind == "rollover":
        rows.device_ms[:] = t - WEEK_ROLLOVER_MS - 8 * HOUR_MS
        return FaultRecord(device_id, kind, int(t.min()), int(t.max()))
    window = _quiet_window(rows, WINDOW_HOURS[kind], rng)
    if window is None:
        return None
    start, end = window
    inside = (t >= start) & (t < end)
    if kind == "backfill":
        order = np.argsort(t[inside], kind="stable")
        arrive = np.empty(int(inside.sum()), np.int64)
        arrive[order] = end + np.arange(len(order), dtype=np.int64) * 5
        rows.recv_ms[inside] = arrive
        return FaultRecord(device_id, kind, start, end)
    first = int(t[inside].min())
    if kind == "reset":
        epoch = RESET_2000_MS if index % 2 == 0 else RESET_1980_MS
        rows.device_ms[inside] = epoch + (t[inside] - start)
        rows.unusable |= inside
    elif kind == "stuck":
        rows.device_ms[inside] = first  # the first fix of the window is still right
        rows.unusable |= inside & (t > first)
    elif kind == "future":
        rows.device_ms[inside] = t[inside] + FUTURE_MS
        rows.unusable |= inside
    return FaultRecord(device_id, kind, start, end)


def _quiet_window(
    rows: FaultRows, hours: tuple[int, int], rng: np.random.Generator
) -> tuple[int, int] | None:
    """A window of whole minutes, `hours` long, whose rows are all quiet (and at least
    MIN_ROWS of them); None when a few random tries find none."""
    t = rows.true_ms
    for _ in range(TRIES):
        length = int(rng.integers(hours[0] * 60, hours[1] * 60 + 1)) * 60_000
        start = int(t[int(rng.integers(0, len(t)))])
        if start + length > int(t.max()) - 10 * 60_000:
            continue  # within the data: a link back after the end would stretch the clock
        inside = (t >= start) & (t < start + length)
        # The window must hold only quiet rows, and so must its edges: the fix before it and
        # after it are where the platform sees the clock change.
        edge = (t >= start - 10 * 60_000) & (t < start + length + 10 * 60_000)
        if inside.sum() >= MIN_ROWS and rows.quiet[edge].all():
            return start, start + length
    return None
