"""Faulty and hostile trackers, so each case the platform must survive is reproducible.

Clock faults change the fix times a device sends (contracts section 3): `utc` (a clock on UTC,
8 h behind GMT+8), `reset` (an RTC reset to 2000-01-01, or to 1980-01-06 which the BCD year
sends as 2080, running from there), `rollover` (1024 weeks early: GPS week-number rollover),
`backfill` (stored fixes hours or days old, sent late as plain reports), `future` (days ahead)
and `stuck` (one time, over and over). Hostile connections are extra to the reporting fleet:
`impostor` (registers a terminal of the fleet with another identity), `silent` (connects and
never sends a byte) and `garbage` (sends bytes that are no frame). `mixed` is all of them.

Pure: which device gets which fault and what time it sends; the load generator and the
scenario writer apply them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ROLLOVER_MS = 1024 * 7 * DAY_MS
RESET_2000_MS = 946_656_000_000  # 2000-01-01T00:00:00+08:00
RESET_1980_MS = 3_471_696_000_000  # 2080-01-06T00:00:00+08:00: how BCD sends 1980-01-06
FUTURE_MS = 3 * DAY_MS

CLOCK_FAULTS = ("utc", "reset", "rollover", "backfill", "future", "stuck")
HOSTILE = ("impostor", "silent", "garbage")
FAULTS = CLOCK_FAULTS + HOSTILE
# Codes in the per-device array: 0 is a sound clock, then CLOCK_FAULTS in order.
OK = 0


class FaultError(ValueError):
    """A --faults value that names no fault."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Per device its clock fault code (0 sound), and how many hostile connections of each
    kind run beside the fleet."""

    clock: npt.NDArray[np.int8]
    hostile: dict[str, int] = field(default_factory=dict)
    backfill_ms: int = 48 * HOUR_MS

    def kinds(self) -> dict[str, int]:
        """Devices per clock kind ("ok" for a sound clock), for the run's report."""
        counts = np.bincount(self.clock, minlength=len(CLOCK_FAULTS) + 1)
        names = ("ok", *CLOCK_FAULTS)
        return {names[i]: int(c) for i, c in enumerate(counts.tolist()) if c}


def parse_faults(text: str) -> tuple[str, ...]:
    """`mixed`, or a comma list of fault names; raises FaultError naming a bad one."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["mixed"]:
        return ("mixed",)
    for name in names:
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r} (expected mixed or {', '.join(FAULTS)})")
    if not names:
        raise FaultError("no fault named")
    return tuple(dict.fromkeys(names))


def plan_faults(
    names: tuple[str, ...], devices: int, hostile: int | None = None, backfill_hours: float = 48.0
) -> FaultPlan:
    """Clock faults dealt round-robin over the fleet (with sound clocks among them for
    `mixed`); `hostile` connections of each hostile kind named (default a tenth of the fleet,
    at least one)."""
    mixed = names == ("mixed",)
    clock_names = CLOCK_FAULTS if mixed else tuple(n for n in names if n in CLOCK_FAULTS)
    codes = [CLOCK_FAULTS.index(n) + 1 for n in clock_names]
    if mixed:
        codes = [OK, *codes]
    cycle = np.asarray(codes or [OK], np.int8)
    clock = cycle[np.arange(devices) % len(cycle)]
    hostile_names = HOSTILE if mixed else tuple(n for n in names if n in HOSTILE)
    each = max(1, devices // 10) if hostile is None else hostile
    return FaultPlan(
        clock=clock,
        hostile=dict.fromkeys(hostile_names, each),
        backfill_ms=int(backfill_hours * HOUR_MS),
    )


def device_times(
    clock: npt.NDArray[np.int8],
    true_ms: npt.NDArray[np.int64],
    start_ms: int,
    device: npt.NDArray[np.int64],
    backfill_ms: int = 48 * HOUR_MS,
) -> npt.NDArray[np.int64]:
    """The fix time each device sends for fixes taken at `true_ms` (`clock` holds each row's
    fault code, `device` its device number; the run began at `start_ms`)."""
    t = np.asarray(true_ms, np.int64).copy()
    code = np.asarray(clock)
    kind = {name: code == CLOCK_FAULTS.index(name) + 1 for name in CLOCK_FAULTS}
    t[kind["utc"]] -= 8 * HOUR_MS
    t[kind["rollover"]] -= ROLLOVER_MS
    t[kind["backfill"]] -= backfill_ms
    t[kind["future"]] += FUTURE_MS
    reset = kind["reset"]
    epoch = np.where(np.asarray(device) % 2 == 0, RESET_2000_MS, RESET_1980_MS)
    t[reset] = epoch[reset] + (t[reset] - start_ms)
    t[kind["stuck"]] = start_ms
    return t
