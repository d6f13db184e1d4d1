"""Hostile connections beside a load run (simulators.faults): impostors, silent connections and
garbage senders, each counted by what the server did to it.

- An impostor registers (0x0100) a terminal of the fleet with another identity (maker, model,
  terminal id). Refused (0x8100 result not 0) is the right answer; given a code, it
  authenticates, sends one report from far away and holds its connection to the end.
- A silent connection opens and never sends a byte.
- A garbage sender opens and sends random bytes (some of them 0x7e, so the server's framing
  finds "frames" that are none) every second.
The report says how many the server closed, and after how long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from ingest.jt808 import Edition, Jt808Connection, MessageReceived, Role
from ingest.jt808.messages import (
    Authenticate,
    LocationReport,
    PlatformGeneralResponse,
    Register,
    RegisterResponse,
)
from simulators.device import imei_for

FAR_AWAY = (116.397, 39.909)  # an impostor's report: nowhere near the fleet
GARBAGE_BYTES = 64


@dataclass(slots=True)
class Hostiles:
    """What happened to each kind of hostile connection."""

    opened: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # could not even connect
    closed_after_s: dict[str, list[float]] = field(default_factory=dict)  # by the server
    register_results: dict[int, int] = field(default_factory=dict)  # impostors' 0x8100 results
    authenticated: int = 0  # impostors whose code was accepted
    garbage_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, opened in self.opened.items():
            closed = np.asarray(self.closed_after_s.get(kind, []), np.float64)
            entry: dict[str, Any] = {
                "opened": opened,
                "failed": self.failed.get(kind, 0),
                "closed_by_server": len(closed),
                "still_open": opened - len(closed),
            }
            if len(closed):
                entry["closed_after_s"] = {
                    "p50": round(float(np.median(closed)), 3),
                    "max": round(float(closed.max()), 3),
                }
            if kind == "impostor":
                results = self.register_results
                entry["refused"] = sum(c for r, c in results.items() if r != 0)
                entry["given_a_code"] = results.get(0, 0)
                entry["authenticated"] = self.authenticated
                entry["register_results"] = {str(r): c for r, c in sorted(results.items())}
            if kind == "garbage":
                entry["bytes_sent"] = self.garbage_bytes
            out[kind] = entry
        return out


class _Link(asyncio.Protocol):
    """One hostile connection: notes when the server closes it."""

    def __init__(self, kind: str, hostiles: Hostiles) -> None:
        self.kind = kind
        self.hostiles = hostiles
        self.opened_at = time.monotonic()
        self.transport: asyncio.Transport | None = None
        self.closing = False  # we close it ourselves at the end: not the server's doing
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            took = time.monotonic() - self.opened_at
            self.hostiles.closed_after_s.setdefault(self.kind, []).append(took)
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class _Impostor(_Link):
    def __init__(self, hostiles: Hostiles, terminal: str, index: int, edition: Edition) -> None:
        super().__init__("impostor", hostiles)
        self.conn = Jt808Connection(Role.TERMINAL, terminal=terminal, edition=edition)
        self.terminal = terminal
        self.index = index
        self.edition = edition
        self.auth_serial = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.conn.send(
            Register(
                province_id=11,
                city_id=0,
                maker_id="EVIL",
                model="IMPOSTOR",
                terminal_id=f"X{self.index:06d}",
                plate_color=1,
                plate="京A" + self.terminal[-5:],
                edition=self.edition,
            )
        )
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        for event in self.conn.events():
            if not isinstance(event, MessageReceived):
                continue
            message = event.message
            if isinstance(message, RegisterResponse):
                results = self.hostiles.register_results
                results[message.result] = results.get(message.result, 0) + 1
                if message.result == 0:
                    self.auth_serial = self.conn.send(
                        Authenticate(
                            message.auth_code, imei_for(self.terminal), "LWSIM-evil", self.edition
                        )
                    )
            elif (
                isinstance(message, PlatformGeneralResponse)
                and message.answer_serial == self.auth_serial
                and message.result == 0
            ):
                self.hostiles.authenticated += 1
                self.conn.send(
                    LocationReport.at(
                        lon=FAR_AWAY[0], lat=FAR_AWAY[1], time_ms=time.time_ns() // 10**6
                    )
                )
        self._flush()

    def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out and self.transport is not None:
            self.transport.write(out)


class _Silent(_Link):
    def __init__(self, hostiles: Hostiles) -> None:
        super().__init__("silent", hostiles)


class _Garbage(_Link):
    def __init__(self, hostiles: Hostiles, seed: int) -> None:
        super().__init__("garbage", hostiles)
        self.rng = np.random.default_rng(seed)

    def send_some(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        data = self.rng.integers(0, 256, GARBAGE_BYTES, dtype=np.uint8)
        data[self.rng.integers(0, GARBAGE_BYTES, 4)] = 0x7E
        self.transport.write(data.tobytes())
        self.hostiles.garbage_bytes += GARBAGE_BYTES


async def run_hostiles(
    host: str,
    port: int,
    counts: dict[str, int],
    terminals: list[str],
    edition: Edition,
    until: asyncio.Event,
    seed: int = 1,
) -> Hostiles:
    """Opens the hostile connections, keeps them (garbage senders sending) until `until` is
    set, closes what the server left open, and reports."""
    loop = asyncio.get_running_loop()
    hostiles = Hostiles()
    links: list[_Link] = []

    async def open_one(factory: Any, kind: str) -> None:
        hostiles.opened[kind] = hostiles.opened.get(kind, 0) + 1
        try:
            _, link = await asyncio.wait_for(loop.create_connection(factory, host, port), 30.0)
        except (OSError, TimeoutError):
            hostiles.failed[kind] = hostiles.failed.get(kind, 0) + 1
            return
        links.append(link)

    opening = []
    for i in range(counts.get("impostor", 0)):
        terminal = terminals[i % len(terminals)]
        opening.append(
            open_one(lambda t=terminal, k=i: _Impostor(hostiles, t, k, edition), "impostor")
        )
    for _ in range(counts.get("silent", 0)):
        opening.append(open_one(lambda: _Silent(hostiles), "silent"))
    for i in range(counts.get("garbage", 0)):
        opening.append(open_one(lambda s=seed * 7919 + i: _Garbage(hostiles, s), "garbage"))
    gate = asyncio.Semaphore(256)

    async def gated(step: Any) -> None:
        async with gate:
            await step

    await asyncio.gather(*(gated(step) for step in opening))
    while not until.is_set():
        for link in links:
            if isinstance(link, _Garbage):
                link.send_some()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), 1.0)
    for link in links:
        link.close()
    await asyncio.sleep(0)
    return hostiles
