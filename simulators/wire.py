"""The thin asyncio shell that runs `simulators.device.Device` objects over TCP.

It only moves bytes and keeps one timer per device: connect when the device wants to, feed what
arrives, tick when the device's next timer is due, write what the device queued, close when the
device asks to and report the loss. All protocol behaviour lives in the sans-IO device.
`Clock` can run faster than the wall clock, so tests see minutes of device life in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simulators.device import Device


@dataclass(frozen=True, slots=True)
class Clock:
    """Device time in epoch ms: the wall clock, optionally sped up by `speed`."""

    speed: float = 1.0
    origin_ms: int = 0
    origin_s: float = 0.0

    @classmethod
    def start(cls, speed: float = 1.0, origin_ms: int | None = None) -> Clock:
        wall_ms = time.time_ns() // 1_000_000 if origin_ms is None else origin_ms
        return cls(speed, wall_ms, time.monotonic())

    def now_ms(self) -> int:
        return self.origin_ms + round((time.monotonic() - self.origin_s) * 1000 * self.speed)

    def seconds_until(self, at_ms: int) -> float:
        """Real seconds until device time `at_ms`."""
        return max(0.0, (at_ms - self.now_ms()) / 1000 / self.speed)


async def run_tcp(device: Device, host: str, port: int, clock: Clock, stop: asyncio.Event) -> None:
    """Runs one device against HOST:PORT until `stop` is set; reconnects as the device decides."""
    stop_wait: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            now = clock.now_ms()
            if not device.wants_connection(now):
                device.tick(now)  # offline: fixes go to the blind-area store
                wake = device.next_timer_ms(now)
                if not device.connected:
                    wake = min(wake, device.reconnect_at_ms)
                await asyncio.wait({stop_wait}, timeout=clock.seconds_until(wake))
                continue
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                device.connection_lost(clock.now_ms())
                continue
            try:
                await _session(device, reader, writer, clock, stop_wait)
            finally:
                with contextlib.suppress(OSError):
                    data = device.data_to_send()
                    if data:
                        writer.write(data)
                writer.close()
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await writer.wait_closed()
                device.connection_lost(clock.now_ms())
    finally:
        stop_wait.cancel()


async def _session(
    device: Device,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    clock: Clock,
    stop_wait: asyncio.Future[Any],
) -> None:
    device.connection_made(clock.now_ms())
    read: asyncio.Future[bytes] | None = None
    try:
        while not stop_wait.done() and not device.close_wanted:
            out = device.data_to_send()
            if out:
                writer.write(out)
                await writer.drain()
            if read is None:
                read = asyncio.ensure_future(reader.read(65536))
            now = clock.now_ms()
            timeout = clock.seconds_until(device.next_timer_ms(now))
            waiting: set[asyncio.Future[Any]] = {read, stop_wait}
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            now = clock.now_ms()
            if read in done:
                try:
                    data = read.result()
                except OSError:
                    return
                read = None
                if not data:
                    return  # the peer closed
                device.receive_data(data, now)
            device.tick(now)
        out = device.data_to_send()
        if out:
            writer.write(out)
    finally:
        if read is not None:
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await read


async def run_fleet_tcp(
    devices: Iterable[Device], host: str, port: int, clock: Clock, stop: asyncio.Event
) -> None:
    """Runs every device until `stop` is set."""
    await asyncio.gather(*(run_tcp(d, host, port, clock, stop) for d in devices))


__all__ = ["Clock", "run_fleet_tcp", "run_tcp"]
