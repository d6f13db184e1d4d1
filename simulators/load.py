"""Load mode: thousands of simulated trackers over TCP, an open-loop report rate, ack latency.

Each device registers (0x0100) and authenticates (0x0102) through the codec's TERMINAL role, then
reports 0x0200 on a fixed schedule: the whole fleet offers `rate` reports per second whatever the
server does (open loop), so a slow server shows as acknowledgement latency, never as a lower
offered rate. Reports are built in batches with the vectorized encoder; acknowledgements are
matched to their report by serial number. Platform commands are answered like a device would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.jt808 import (
    Edition,
    FrameError,
    Jt808Connection,
    MessageReceived,
    Role,
    encode_frame,
)
from ingest.jt808.batch_encode import encode_location_frames, terminal_bytes
from ingest.jt808.framing import FLAG_BYTE, checksum, unescape
from ingest.jt808.messages import (
    Authenticate,
    LocationQuery,
    LocationQueryReply,
    LocationReport,
    Message,
    ParametersReply,
    PlatformGeneralResponse,
    QueryParameters,
    Register,
    RegisterResponse,
    TerminalGeneralResponse,
)

RING = 4096  # send times kept per device, by serial: more outstanding reports count as lost


@dataclass(frozen=True, slots=True)
class LoadConfig:
    host: str
    port: int
    devices: int
    rate: float  # reports per second, whole fleet
    duration_s: float
    edition: Edition = Edition.V2013
    tick_s: float = 0.01
    connect_concurrency: int = 256
    drain_timeout_s: float = 15.0
    first_terminal: int = 13_900_000_000
    seed: int = 1


@dataclass(slots=True)
class LoadReport:
    devices: int
    connected: int
    sent: int
    acknowledged: int
    errors: int
    duration_s: float
    offered_rate: float
    achieved_rate: float
    ack_latency_ms: dict[str, float] = field(default_factory=dict)
    refused: int = 0
    commands_answered: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "connected": self.connected,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "errors": self.errors,
            "refused": self.refused,
            "duration_s": round(self.duration_s, 3),
            "offered_rate": round(self.offered_rate, 1),
            "achieved_rate": round(self.achieved_rate, 1),
            "ack_latency_ms": {k: round(v, 3) for k, v in self.ack_latency_ms.items()},
            "commands_answered": self.commands_answered,
        }


class _Fleet:
    """Per-device state in arrays: serial counters, send times by serial, positions."""

    def __init__(self, cfg: LoadConfig) -> None:
        n = cfg.devices
        rng = np.random.default_rng(cfg.seed)
        self.cfg = cfg
        self.terminals = [str(cfg.first_terminal + i) for i in range(n)]
        self.tid = terminal_bytes(self.terminals, cfg.edition)
        self.serial = np.zeros(n, dtype=np.int64)
        self.sent_at = np.zeros((n, RING), dtype=np.float64)
        self.lon = rng.uniform(113.0, 122.0, n)
        self.lat = rng.uniform(22.0, 32.0, n)
        self.mileage = rng.integers(0, 10**6, n)
        self.links: list[_Link | None] = [None] * n
        self.latencies = np.zeros(max(1024, int(cfg.rate * (cfg.duration_s + 5) * 1.2)), np.float32)
        self.acked = 0
        self.errors = 0
        self.sent = 0
        self.commands = 0

    def record_ack(self, device: int, serial: int, now: float) -> None:
        sent = self.sent_at[device, serial % RING]
        if sent <= 0:
            self.errors += 1  # an answer to nothing we are waiting for
            return
        self.sent_at[device, serial % RING] = 0.0
        if self.acked < len(self.latencies):
            self.latencies[self.acked] = now - sent
        self.acked += 1


class _Link(asyncio.Protocol):
    """One device's TCP connection: codec handshake, then a lean ack path."""

    def __init__(self, fleet: _Fleet, device: int) -> None:
        self.fleet = fleet
        self.device = device
        cfg = fleet.cfg
        self.conn = Jt808Connection(
            Role.TERMINAL, terminal=fleet.terminals[device], edition=cfg.edition
        )
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.fast = False
        self.buffer = b""
        self.lost = False
        self.auth_code = ""
        self.auth_serial = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        register = Register(
            31, 0, "LWSIM", "load", f"L{self.device:06d}"[:7], 1, "SIM", self.fleet.cfg.edition
        )
        self.conn.send(register)
        self._flush_conn()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_result(False)

    def _flush_conn(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if not self.fast:
            self._handshake(data)
            return
        buf = self.buffer + data if self.buffer else data
        pieces = buf.split(FLAG_BYTE)
        self.buffer = pieces[-1]
        now = time.monotonic()
        fleet = self.fleet
        for piece in pieces[:-1]:
            if not piece:
                continue
            if b"\x7d" in piece:
                try:
                    piece = unescape(piece)
                except FrameError:
                    fleet.errors += 1
                    continue
            if len(piece) < 13 or checksum(piece):
                fleet.errors += 1
                continue
            if piece[0] == 0x80 and piece[1] == 0x01:
                head = 17 if piece[2] & 0x40 else 12
                if len(piece) >= head + 6 and piece[head + 2 : head + 4] == b"\x02\x00":
                    fleet.record_ack(
                        self.device, int.from_bytes(piece[head : head + 2], "big"), now
                    )
                    if piece[head + 4] != 0:
                        fleet.errors += 1
                continue
            self._command(piece)

    def _handshake(self, data: bytes) -> None:
        self.conn.receive_data(data)
        for event in self.conn.events():
            if not isinstance(event, MessageReceived):
                continue
            message = event.message
            if isinstance(message, RegisterResponse):
                if message.result != 0:
                    self.ready.set_result(False)
                    return
                self.auth_code = message.auth_code
                auth = Authenticate(
                    message.auth_code, "86" + f"{self.device:013d}", "sim", self.fleet.cfg.edition
                )
                self.auth_serial = self.conn.send(auth)
                self._flush_conn()
            elif (
                isinstance(message, PlatformGeneralResponse)
                and message.answer_serial == self.auth_serial
            ):
                ok = message.result == 0
                if ok:
                    self.fleet.serial[self.device] = self.conn.next_serial()
                    self.fast = True
                if not self.ready.done():
                    self.ready.set_result(ok)

    def _command(self, content: bytes) -> None:
        """A platform message other than an ack: decode it fully and answer like a device."""
        self.conn.receive_frame(content + bytes((checksum(content),)))
        for event in self.conn.events():
            if isinstance(event, MessageReceived):
                reply = self._answer(event)
                if reply is not None:
                    self._send_now(reply)
                    self.fleet.commands += 1

    def _answer(self, event: MessageReceived) -> Message | None:
        header, message = event.header, event.message
        if isinstance(message, PlatformGeneralResponse):
            return None
        if isinstance(message, LocationQuery):
            d = self.device
            report = LocationReport.at(
                lon=float(self.fleet.lon[d]),
                lat=float(self.fleet.lat[d]),
                time_ms=time.time_ns() // 10**6,
            )
            return LocationQueryReply(header.serial, report)
        if isinstance(message, QueryParameters):
            return ParametersReply(header.serial, ((0x0029, (30).to_bytes(4, "big")),))
        return TerminalGeneralResponse(header.serial, header.msg_id, 0)

    def _send_now(self, message: Message) -> None:
        d = self.device
        serial = int(self.fleet.serial[d]) & 0xFFFF
        self.fleet.serial[d] += 1
        frame = encode_frame(
            message, terminal=self.fleet.terminals[d], serial=serial, edition=self.fleet.cfg.edition
        )
        if self.transport is not None:
            self.transport.write(frame)


async def _connect(fleet: _Fleet, device: int, gate: asyncio.Semaphore, timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    cfg = fleet.cfg
    async with gate:
        try:
            _, link = await asyncio.wait_for(
                loop.create_connection(lambda: _Link(fleet, device), cfg.host, cfg.port), timeout_s
            )
            ok = await asyncio.wait_for(link.ready, timeout_s)
        except (OSError, TimeoutError):
            return False
    if ok:
        fleet.links[device] = link
    elif link.transport is not None:
        link.transport.close()
    return ok


def _percentiles(values: npt.NDArray[np.float32]) -> dict[str, float]:
    if not len(values):
        return {}
    ms = values.astype(np.float64) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(ms.max())}


async def run_load(cfg: LoadConfig, progress: Callable[[str], None] | None = None) -> LoadReport:
    """Connects the fleet, reports at `cfg.rate` for `cfg.duration_s`, waits for the last acks."""
    fleet = _Fleet(cfg)
    gate = asyncio.Semaphore(cfg.connect_concurrency)
    results = await asyncio.gather(*(_connect(fleet, d, gate, 30.0) for d in range(cfg.devices)))
    connected = np.flatnonzero(np.array(results, dtype=bool))
    refused = cfg.devices - len(connected)
    if not len(connected):
        return LoadReport(cfg.devices, 0, 0, 0, refused, 0.0, cfg.rate, 0.0, {}, refused)
    period = len(connected) / cfg.rate  # seconds between two reports of one device
    start = time.monotonic()
    phase = np.random.default_rng(cfg.seed).uniform(0, period, len(connected))
    next_at = start + phase
    end = start + cfg.duration_s
    wall0_ms = time.time_ns() // 10**6
    last_progress = start
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = next_at <= now
        if due.any():
            idx = np.flatnonzero(due)
            count = (np.floor((now - next_at[idx]) / period) + 1).astype(np.int64)
            rows = np.repeat(idx, count)
            step = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
            sched = next_at[rows] + step * period
            next_at[idx] += count * period
            _send(fleet, connected[rows], sched, wall0_ms, start)
        if progress is not None and now - last_progress >= 1.0:
            last_progress = now
            elapsed = now - start
            progress(
                f"t={elapsed:5.1f}s sent={fleet.sent} acked={fleet.acked} "
                f"rate={fleet.sent / elapsed:,.0f}/s errors={fleet.errors}"
            )
        await asyncio.sleep(max(0.0, min(cfg.tick_s, float(next_at.min()) - time.monotonic())))
    sending_s = time.monotonic() - start
    deadline = time.monotonic() + cfg.drain_timeout_s
    while fleet.acked < fleet.sent and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for link in fleet.links:
        if link is not None and link.transport is not None:
            link.transport.close()
    await asyncio.sleep(0)
    lost = fleet.sent - fleet.acked
    return LoadReport(
        devices=cfg.devices,
        connected=len(connected),
        sent=fleet.sent,
        acknowledged=fleet.acked,
        errors=fleet.errors + max(0, lost),
        duration_s=sending_s,
        offered_rate=cfg.rate,
        achieved_rate=fleet.sent / sending_s if sending_s > 0 else 0.0,
        ack_latency_ms=_percentiles(fleet.latencies[: min(fleet.acked, len(fleet.latencies))]),
        refused=refused,
        commands_answered=fleet.commands,
    )


def _send(
    fleet: _Fleet,
    devices: npt.NDArray[np.int64],
    sched: npt.NDArray[np.float64],
    wall0_ms: int,
    start: float,
) -> None:
    """Encodes one report per row (rows of one device are adjacent) and writes them."""
    alive = np.fromiter(
        (
            (link := fleet.links[int(d)]) is not None
            and not link.lost
            and link.transport is not None
            for d in devices
        ),
        dtype=bool,
        count=len(devices),
    )
    if not alive.all():
        fleet.errors += int((~alive).sum())
        devices, sched = devices[alive], sched[alive]
    n = len(devices)
    if not n:
        return
    first = np.r_[True, devices[1:] != devices[:-1]]
    starts = np.flatnonzero(first)
    run = np.diff(np.r_[starts, n])
    within = np.arange(n) - np.repeat(starts, run)
    serial = fleet.serial[devices] + within
    fleet.serial[devices[starts]] += run
    fleet.sent_at[devices, serial % RING] = sched
    rng = np.random.default_rng(int(sched[0] * 1000) & 0xFFFFFFFF)
    fleet.lon[devices] += rng.normal(0, 2e-4, n)
    fleet.lat[devices] += rng.normal(0, 2e-4, n)
    fleet.mileage[devices] += 1
    frames = encode_location_frames(
        terminals=fleet.tid[devices],
        edition=fleet.cfg.edition,
        serial=serial & 0xFFFF,
        alarm=0,
        status=0b1000000000000000011,  # ACC on, positioned, GPS
        lon=fleet.lon[devices],
        lat=fleet.lat[devices],
        time_ms=wall0_ms + ((sched - start) * 1000).astype(np.int64),
        speed_kmh=rng.uniform(0, 90, n).round(1),
        course=rng.integers(0, 360, n),
        items=((0x01, 4, fleet.mileage[devices]), (0x30, 1, 24), (0x31, 1, 11)),
    )
    links = fleet.links
    for s, r in zip(starts.tolist(), run.tolist(), strict=True):
        link = links[int(devices[s])]
        if link is None or link.transport is None:  # checked above: cannot happen
            continue
        link.transport.write(b"".join(frames[s : s + r]) if r > 1 else frames[s])
    fleet.sent += n


def run(cfg: LoadConfig, progress: Callable[[str], None] | None = None) -> LoadReport:
    """Blocking entry point with uvloop when installed."""
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(run_load(cfg, progress))
    return asyncio.run(run_load(cfg, progress))


__all__ = ["LoadConfig", "LoadReport", "run", "run_load"]
