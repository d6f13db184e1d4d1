"""Runs the demo fleet over TCP on the wall clock: `simulators.wire` for each unit, plus the
script's one I/O act of its own (a unit that goes silent disconnects for good at its time)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from simulators.demo import ScriptedDevice
from simulators.wire import Clock, run_tcp


@dataclass(frozen=True, slots=True)
class FleetTotals:
    trackers: int
    reports: int  # 0x0200 reports sent
    acknowledged: int  # reports the gateway acknowledged (0x8001, result 0)
    backfilled: int  # fixes re-sent in blind-area batches after a lost link


def fleet_totals(devices: Sequence[ScriptedDevice]) -> FleetTotals:
    return FleetTotals(
        trackers=len(devices),
        reports=sum(d.stats.reports for d in devices),
        acknowledged=sum(d.stats.acknowledged for d in devices),
        backfilled=sum(d.stats.backfilled for d in devices),
    )


async def _silence_at(stop: asyncio.Event, own: asyncio.Event, delay_s: float) -> None:
    """Sets `own` after `delay_s`, or as soon as the whole fleet stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)
    own.set()


async def run_demo_fleet(
    devices: Sequence[ScriptedDevice], host: str, port: int, clock: Clock, stop: asyncio.Event
) -> None:
    """Runs every unit against HOST:PORT until `stop` is set."""
    runs = []
    for device in devices:
        silent_ms = device.tracker.silent_ms
        if silent_ms is None:
            runs.append(run_tcp(device, host, port, clock, stop))
            continue
        own = asyncio.Event()
        runs.append(_silence_at(stop, own, clock.seconds_until(silent_ms)))
        runs.append(run_tcp(device, host, port, clock, own))
    await asyncio.gather(*runs)


__all__ = ["FleetTotals", "fleet_totals", "run_demo_fleet"]
