"""Load mode: thousands of simulated trackers from one process, an open-loop rate, ack latency.

Each device registers (0x0100) and authenticates (0x0102) through the codec's TERMINAL role, then
reports 0x0200 on a fixed schedule: the whole fleet offers `rate` reports per second whatever the
server does (open loop), so a slow server shows as acknowledgement latency, never as a lower
offered rate. Latency runs from each report's scheduled time, so a late send counts against the
server too (no coordinated omission).

The hot paths work on batches, never one Python call chain per report: reports are encoded in
one vectorized call per tick and written once per device; received bytes are only appended to
an inbox by the transport callbacks, and one vectorized pass per tick finds the 0x8001 answers
in everything received, matches them to their send times by (device, serial) and records their
latencies. Anything else the platform sends goes through the codec and is answered like a device
(`simulators.device.command_reply`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from ingest.jt808 import Edition, FrameError, Jt808Connection, MessageReceived, Role, encode_frame
from ingest.jt808.batch_encode import encode_location_frames, terminal_bytes
from ingest.jt808.framing import FLAG_BYTE, checksum, unescape
from ingest.jt808.messages import (
    Authenticate,
    LocationReport,
    Message,
    PlatformGeneralResponse,
    RegisterResponse,
)
from simulators.device import Kind as DeviceKind
from simulators.device import command_reply, default_registration, imei_for
from simulators.faults import FaultPlan, device_times
from simulators.hostile import run_hostiles

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

RING_WINDOW_S = 10.0  # each device remembers the send times of this many seconds of reports
STATUS_MOVING = 0b1000000000000000011  # ACC on, positioned, GPS
POWER_CUT = 1 << 8  # alarm bit: the main power is cut (Alarm.POWER_CUT)
ENCODERS = ("vector", "scalar")


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
    connect_timeout_s: float = 30.0
    drain_timeout_s: float = 15.0
    first_terminal: int = 13_900_000_000
    seed: int = 1
    # How long a report may wait for its answer and still be matched to it: a run that expects
    # long stalls (a gateway holding acknowledgements while its disk is full) needs more.
    ring_window_s: float = RING_WINDOW_S
    encoder: str = "vector"  # "scalar": one encode_frame per report (the benchmark's baseline)
    faults: FaultPlan | None = None  # faulty clocks and hostile connections (simulators.faults)
    # The first this many trackers report their main power cut (alarm bit 8) in every report:
    # one `power_cut` alert each is what the platform owes, however its processes fare.
    power_cut: int = 0

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError("devices must be at least 1")
        if not 0 <= self.power_cut <= self.devices:
            raise ValueError("power-cut trackers must be between 0 and devices")
        if not self.rate > 0:
            raise ValueError("rate must be above 0")
        if not self.duration_s > 0:
            raise ValueError("duration must be above 0")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}")


@dataclass(slots=True)
class LoadReport:
    """The contract's report (section 4) plus a few figures that explain it."""

    devices: int
    connected: int
    sent: int
    acknowledged: int
    errors: int
    duration_s: float  # the sending window
    offered_rate: float
    achieved_rate: float
    ack_latency_ms: dict[str, float] = field(default_factory=dict)
    refused: int = 0
    commands_answered: int = 0
    unanswered: int = 0
    cpu_s: float = 0.0  # the generator's own CPU, connecting included
    send_lag_ms: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0  # from the first scheduled report to the last answer (or giving up)
    window_cpu_s: float = 0.0  # the generator's own CPU over that window: its cost per report
    # Reports still unanswered when their send-time slot was reused (RING_WINDOW_S later): a
    # late answer to one is matched to the newer report, so latencies are understated.
    overrun: int = 0
    faults: dict[str, Any] | None = None  # with --faults: devices per clock fault, hostiles

    def to_json(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "connected": self.connected,
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "errors": self.errors,
            "unanswered": self.unanswered,
            "refused": self.refused,
            "duration_s": round(self.duration_s, 3),
            "offered_rate": round(self.offered_rate, 1),
            "achieved_rate": round(self.achieved_rate, 1),
            "ack_latency_ms": {k: round(v, 3) for k, v in self.ack_latency_ms.items()},
            "send_lag_ms": {k: round(v, 3) for k, v in self.send_lag_ms.items()},
            "commands_answered": self.commands_answered,
            "cpu_s": round(self.cpu_s, 2),
            "window_s": round(self.window_s, 3),
            "window_cpu_s": round(self.window_cpu_s, 3),
            "overrun": self.overrun,
            **({"faults": self.faults} if self.faults is not None else {}),
        }


def ring_size(devices: int, rate: float, window_s: float = RING_WINDOW_S) -> int:
    """Send-time slots per device: a power of two (so serial % ring survives the 16-bit wrap)
    holding `window_s` of one device's reports."""
    want = max(64.0, rate / devices * window_s)
    return int(min(65536, 1 << int(np.ceil(np.log2(want)))))


class Writer(Protocol):
    """A transport's way to send bytes for one device."""

    def __call__(self, device: int, data: bytes) -> None: ...


class Handshake:
    """Register (0x0100) then authenticate (0x0102) through the codec, sans-IO.

    `feed` takes the platform's messages; `done` becomes True (or False when refused).
    """

    def __init__(self, terminal: str, index: int, edition: Edition) -> None:
        self.terminal = terminal
        self.index = index
        self.edition = edition
        self.conn = Jt808Connection(Role.TERMINAL, terminal=terminal, edition=edition)
        self.done: bool | None = None
        self.auth_serial = -1
        self.after: list[MessageReceived] = []  # what came behind the auth answer

    def start(self) -> bytes:
        self.conn.send(default_registration(self.terminal, DeviceKind.WIRED, self.edition))
        return self.conn.data_to_send()

    def feed(self, data: bytes, *, whole_frame: bool = False) -> bytes:
        if whole_frame:
            self.conn.receive_frame(data)
        else:
            self.conn.receive_data(data)
        for event in self.conn.events():
            if not isinstance(event, MessageReceived):
                continue
            if self.done is not None:
                self.after.append(event)
                continue
            message = event.message
            if isinstance(message, RegisterResponse):
                if message.result != 0:
                    self.done = False
                    break
                auth = Authenticate(
                    message.auth_code, imei_for(self.terminal), "LWSIM-load", self.edition
                )
                self.auth_serial = self.conn.send(auth)
            elif (
                isinstance(message, PlatformGeneralResponse)
                and message.answer_serial == self.auth_serial
            ):
                self.done = message.result == 0
        return self.conn.data_to_send()


class Fleet:
    """Per-device state in arrays (serials, send times by serial, positions) and the inbox."""

    def __init__(self, cfg: LoadConfig) -> None:
        n = cfg.devices
        rng = np.random.default_rng(cfg.seed)
        self.cfg = cfg
        self.terminals = [str(cfg.first_terminal + i) for i in range(n)]
        self.index = {
            t.rjust(20 if cfg.edition is Edition.V2019 else 12, "0"): i
            for i, t in enumerate(self.terminals)
        }
        self.tid = terminal_bytes(self.terminals, cfg.edition)
        self.ring = ring_size(n, cfg.rate, cfg.ring_window_s)
        self.serial = np.zeros(n, dtype=np.int64)
        self.sent_at = np.zeros((n, self.ring), dtype=np.float64)
        self.alive = np.zeros(n, dtype=np.bool_)
        self.handshakes: list[Handshake | None] = [None] * n
        self.lon = rng.uniform(113.0, 122.0, n)
        self.lat = rng.uniform(22.0, 32.0, n)
        self.speed_kmh = rng.uniform(0.0, 90.0, n)
        self.course = rng.uniform(0.0, 360.0, n)
        self.mileage = rng.integers(0, 10**6, n)
        self.alarm = np.zeros(n, dtype=np.uint32)
        self.alarm[: cfg.power_cut] = POWER_CUT
        self.clock = cfg.faults.clock if cfg.faults is not None else None
        self.inbox: list[tuple[int, float, bytes]] = []  # (device, received at, bytes)
        self.latency_parts: list[F64] = []
        self.lag_parts: list[F64] = []  # how late each report left: the generator's own delay
        self.acked = 0
        self.errors = 0
        self.sent = 0
        self.overrun = 0  # reports whose slot was reused before their answer came
        self.commands = 0
        self.write: Writer = _no_writer
        self.join_frames = True  # False: one write per frame (a transport that keeps frames)

    # ------------------------------------------------------------------ receiving

    def take_inbox(self, now: float) -> None:
        """Parses everything received since the last call (see `parse_answers`)."""
        if not self.inbox:
            return
        inbox, self.inbox = self.inbox, []
        devices, times, chunks = zip(*inbox, strict=True)
        found = parse_answers(list(chunks), self.cfg.edition)
        for chunk_i, content in found.others:
            self._other(int(devices[chunk_i]), content)
        if not len(found.chunk):
            return
        dev = np.asarray(devices, dtype=np.int64)[found.chunk]
        recv = np.asarray(times, dtype=np.float64)[found.chunk]
        self.errors += int((found.result != 0).sum())
        self.record_acks(dev, found.serial, recv)

    def record_acks(self, dev: I64, serial: I64, recv: F64) -> None:
        key = dev * self.ring + (serial & (self.ring - 1))
        key, first = np.unique(key, return_index=True)
        self.errors += len(dev) - len(key)  # the same answer twice in one pass
        flat = self.sent_at.reshape(-1)
        sent = flat[key]
        ok = sent > 0
        self.errors += int((~ok).sum())  # an answer to nothing we wait for
        flat[key[ok]] = 0.0
        self.latency_parts.append(recv[first][ok] - sent[ok])
        self.acked += int(ok.sum())

    def _other(self, device: int, content: bytes) -> None:
        """A platform message other than a report's answer: decode it, answer like a device."""
        hs = self.handshakes[device]
        if hs is None or not content:
            self.errors += 1
            return
        hs.conn.receive_frame(content + bytes((checksum(content),)))
        for event in hs.conn.events():
            if not isinstance(event, MessageReceived):
                self.errors += 1
                continue
            self.answer_command(device, event)

    def online(self, device: int, hs: Handshake) -> None:
        """The handshake is done: the device reports from now on."""
        self.serial[device] = hs.conn.next_serial()
        self.handshakes[device] = hs
        self.alive[device] = True
        for event in hs.after:
            self.answer_command(device, event)
        hs.after.clear()

    def answer_command(self, device: int, event: MessageReceived) -> None:
        """Answers like a device; the open-loop schedule stays as it is (a load run's rate is
        the one asked for, whatever 0x8103 or 0x8202 say)."""
        location = LocationReport.at(
            lon=float(self.lon[device]),
            lat=float(self.lat[device]),
            time_ms=time.time_ns() // 10**6,
        )
        reply = command_reply(event.header, event.message, location=location, params={0x0029: 30})
        if reply is not None:
            self._send_message(device, reply)
            self.commands += 1

    def _send_message(self, device: int, message: Message) -> None:
        serial = int(self.serial[device]) & 0xFFFF
        self.serial[device] += 1
        frame = encode_frame(
            message, terminal=self.terminals[device], serial=serial, edition=self.cfg.edition
        )
        self.write(device, frame)

    # ------------------------------------------------------------------ sending

    def send(self, devices: I64, sched: F64, wall0_ms: int, start: float) -> None:
        """Encodes one report per row (rows of one device adjacent) and writes them."""
        alive = self.alive[devices]
        if not alive.all():
            self.errors += int((~alive).sum())
            devices, sched = devices[alive], sched[alive]
        n = len(devices)
        if not n:
            return
        first = np.r_[True, devices[1:] != devices[:-1]]
        starts = np.flatnonzero(first)
        run = np.diff(np.r_[starts, n])
        within = np.arange(n) - np.repeat(starts, run)
        serial = self.serial[devices] + within
        self.serial[devices[starts]] += run
        slot = devices * self.ring + (serial & (self.ring - 1))
        flat = self.sent_at.reshape(-1)
        self.overrun += int((flat[slot] > 0).sum())
        flat[slot] = sched
        rng = np.random.default_rng(int(sched[0] * 1000) & 0xFFFFFFFF)
        # Each report moves its car one second (of data time) at its speed and heading, both
        # drifting: plausible tracks, so the live rules see driving, not GPS jumps.
        self.course[devices] = (self.course[devices] + rng.normal(0.0, 15.0, n)) % 360.0
        speed = np.clip(self.speed_kmh[devices] + rng.normal(0.0, 5.0, n), 0.0, 90.0)
        self.speed_kmh[devices] = speed
        heading = np.radians(self.course[devices])
        step_m = speed / 3.6
        self.lat[devices] += step_m * np.cos(heading) / 110_540.0
        self.lon[devices] += (
            step_m * np.sin(heading) / (111_320.0 * np.cos(np.radians(self.lat[devices])))
        )
        self.mileage[devices] += 1
        cols = {
            "serial": serial & 0xFFFF,
            "lon": self.lon[devices],
            "lat": self.lat[devices],
            # One second of data time per report of a device, whatever the offered rate: the
            # store keys positions by (device, fix time), and a tracker never sends two fixes
            # with the same time, so every report must become its own row.
            "time_ms": self._fix_times(devices, wall0_ms + serial * 1000, wall0_ms),
            "speed_kmh": speed.round(1),
            "course": self.course[devices].astype(np.int64),
            "mileage": self.mileage[devices],
        }
        frames = (
            self._encode_vector(devices, cols)
            if self.cfg.encoder == "vector"
            else self._encode_scalar(devices, cols)
        )
        write = self.write
        if len(starts) == n or not self.join_frames:
            for d, frame in zip(devices.tolist(), frames, strict=True):
                write(d, frame)
        else:
            for s, r in zip(starts.tolist(), run.tolist(), strict=True):
                write(int(devices[s]), b"".join(frames[s : s + r]))
        self.sent += n

    def _fix_times(self, devices: I64, true_ms: I64, wall0_ms: int) -> I64:
        """The fix times the devices send: the true ones, or what a faulty clock makes of them."""
        faults = self.cfg.faults
        if faults is None or self.clock is None or not self.clock[devices].any():
            return true_ms
        return device_times(self.clock[devices], true_ms, wall0_ms, devices, faults.backfill_ms)

    def _encode_vector(self, devices: I64, cols: dict[str, Any]) -> list[bytes]:
        return encode_location_frames(
            terminals=self.tid[devices],
            edition=self.cfg.edition,
            serial=cols["serial"],
            alarm=self.alarm[devices],
            status=STATUS_MOVING,
            lon=cols["lon"],
            lat=cols["lat"],
            time_ms=cols["time_ms"],
            speed_kmh=cols["speed_kmh"],
            course=cols["course"],
            items=((0x01, 4, cols["mileage"]), (0x30, 1, 24), (0x31, 1, 11)),
        )

    def _encode_scalar(self, devices: I64, cols: dict[str, Any]) -> list[bytes]:
        frames = []
        for i, d in enumerate(devices.tolist()):
            report = LocationReport.at(
                lon=float(cols["lon"][i]),
                lat=float(cols["lat"][i]),
                time_ms=int(cols["time_ms"][i]),
                speed_kmh=float(cols["speed_kmh"][i]),
                course=int(cols["course"][i]),
                alarm=int(self.alarm[d]),
                status=STATUS_MOVING,
                extras=(
                    (0x01, int(cols["mileage"][i]).to_bytes(4, "big")),
                    (0x30, b"\x18"),
                    (0x31, b"\x0b"),
                ),
            )
            frames.append(
                encode_frame(
                    report,
                    terminal=self.terminals[d],
                    serial=int(cols["serial"][i]),
                    edition=self.cfg.edition,
                )
            )
        return frames


def _no_writer(device: int, data: bytes) -> None:
    raise RuntimeError("no transport attached to the fleet")


# ---------------------------------------------------------------------- answer parsing


@dataclass(frozen=True, slots=True)
class Answers:
    """0x8001 answers to 0x0200 found in received chunks, and the other messages."""

    chunk: I64  # index of the chunk each answer came in
    serial: I64  # the answered serial
    result: I64
    others: list[tuple[int, bytes]]  # (chunk, unescaped header+body) of everything else


def parse_answers(chunks: list[bytes], edition: Edition) -> Answers:
    """Finds the 0x8001 answers to 0x0200 in `chunks`, vectorized.

    Each chunk starts at a 0x7e flag; a chunk's last piece may end at the next chunk's first flag
    (the stream transport keeps a frame's closing flag for the next read), so the pieces are the
    spans between consecutive flags of all chunks joined. Unescaped answers of the usual length
    are read as rows of one array; the rare escaped or other pieces take the scalar path.
    """
    blob = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    chunk_start = np.cumsum(lengths) - lengths
    flags = np.flatnonzero(blob == 0x7E)
    begin = flags + 1
    end = np.r_[flags[1:], len(blob)]
    keep = end > begin
    begin, end = begin[keep], end[keep]
    escapes = np.r_[0, np.cumsum(blob == 0x7D)]
    head = 17 if edition is Edition.V2019 else 12
    size = head + 5 + 1
    simple = (end - begin == size) & (escapes[end] == escapes[begin])
    rows = blob[begin[simple][:, None] + np.arange(size)]
    sound = (
        (np.bitwise_xor.reduce(rows, axis=1) == 0)
        & (rows[:, 0] == 0x80)
        & (rows[:, 1] == 0x01)
        & (rows[:, head + 2] == 0x02)
        & (rows[:, head + 3] == 0x00)
    )
    piece_chunk = np.searchsorted(chunk_start, begin, side="right") - 1
    good = rows[sound]
    chunk = piece_chunk[simple][sound]
    serial = good[:, head].astype(np.int64) << 8 | good[:, head + 1]
    result = good[:, head + 4].astype(np.int64)
    slow = np.flatnonzero(~simple)
    slow = np.r_[slow, np.flatnonzero(simple)[~sound]]
    others: list[tuple[int, bytes]] = []
    extra_chunk: list[int] = []
    extra_serial: list[int] = []
    extra_result: list[int] = []
    data = blob.tobytes() if len(slow) else b""
    for i in slow.tolist():
        try:
            content = unescape(data[begin[i] : end[i]])
        except FrameError:
            content = b""
        c = int(piece_chunk[i])
        if len(content) < 13 or checksum(content):
            others.append((c, b""))  # counted as an error by the fleet
            continue
        h = 17 if content[2] & 0x40 else 12
        if (
            content[:2] == b"\x80\x01"
            and len(content) == h + 6
            and content[h + 2 : h + 4] == (b"\x02\x00")
        ):
            extra_chunk.append(c)
            extra_serial.append(int.from_bytes(content[h : h + 2], "big"))
            extra_result.append(content[h + 4])
        else:
            others.append((c, content[:-1]))
    if extra_chunk:
        chunk = np.r_[chunk, extra_chunk]
        serial = np.r_[serial, extra_serial]
        result = np.r_[result, extra_result]
    return Answers(chunk.astype(np.int64), serial.astype(np.int64), result, others)


# ---------------------------------------------------------------------- TCP transport


class _Link(asyncio.Protocol):
    """One device's TCP connection: the codec handshake, then bytes straight to the inbox."""

    def __init__(self, fleet: Fleet, device: int) -> None:
        self.fleet = fleet
        self.device = device
        self.handshake = Handshake(fleet.terminals[device], device, fleet.cfg.edition)
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.fast = False
        self.rest = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport but offer the same methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.handshake.start())

    def connection_lost(self, exc: Exception | None) -> None:
        self.fleet.alive[self.device] = False
        if not self.ready.done():
            self.ready.set_result(False)

    def data_received(self, data: bytes) -> None:
        if self.fast:
            buf = self.rest + data if self.rest else data
            if not self.rest:
                first = buf.find(FLAG_BYTE)
                if first < 0:
                    return  # bytes outside any frame
                buf = buf[first:]
            cut = buf.rfind(FLAG_BYTE)
            self.rest = buf[cut:]  # from the last flag on: it may open or close a frame
            if cut:
                self.fleet.inbox.append((self.device, time.monotonic(), buf[:cut]))
            return
        out = self.handshake.feed(data)
        if out and self.transport is not None:
            self.transport.write(out)
        if self.handshake.done is not None and not self.ready.done():
            self.ready.set_result(self.handshake.done)


async def _connect_tcp(
    fleet: Fleet,
    device: int,
    gate: asyncio.Semaphore,
    transports: list[asyncio.Transport | None],
) -> _Link | None:
    loop = asyncio.get_running_loop()
    cfg = fleet.cfg
    async with gate:
        try:
            _, link = await asyncio.wait_for(
                loop.create_connection(lambda: _Link(fleet, device), cfg.host, cfg.port),
                cfg.connect_timeout_s,
            )
            ok = await asyncio.wait_for(link.ready, cfg.connect_timeout_s)
        except (OSError, TimeoutError):
            return None
    if not ok:
        if link.transport is not None:
            link.transport.close()
        return None
    link.fast = True
    transports[device] = link.transport
    fleet.online(device, link.handshake)
    return link


class TcpTransport:
    """Connects every device over its own TCP connection."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.links: list[_Link | None] = [None] * fleet.cfg.devices

    async def connect(self) -> None:
        fleet = self.fleet
        transports: list[asyncio.Transport | None] = [None] * fleet.cfg.devices

        def write(device: int, data: bytes) -> None:
            transports[device].write(data)  # type: ignore[union-attr]

        fleet.write = write
        gate = asyncio.Semaphore(fleet.cfg.connect_concurrency)
        self.links = list(
            await asyncio.gather(
                *(_connect_tcp(fleet, d, gate, transports) for d in range(fleet.cfg.devices))
            )
        )

    def poll(self) -> None:
        """Nothing to do: the protocol callbacks fill the inbox."""

    async def close(self) -> None:
        for link in self.links:
            if link is not None and link.transport is not None:
                link.transport.close()
        await asyncio.sleep(0)


class Transport(Protocol):
    fleet: Fleet

    async def connect(self) -> None: ...

    def poll(self) -> None: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------------- CPU accounting

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on: the command name may hold spaces or parens."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        text = fh.read().decode("ascii", "replace")
    return text[text.rindex(")") + 2 :].split()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds the kernel charged to process `pid` (Linux /proc).

    Counts every thread of the process, ended ones too, and the children it has waited for,
    plus its live descendants: a server's whole cost, not just its main thread's. Read from
    the kernel's own accounting, so a process measures another without disturbing it.
    Resolution is one clock tick (usually 10 ms). Raises ProcessLookupError when `pid` is gone.
    """
    try:
        fields = _stat_fields(pid)
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    # utime, stime, cutime, cstime are fields 14..17, i.e. 11..14 from the state on.
    total = sum(int(f) for f in fields[11:15]) / CLOCK_TICKS
    for child in _descendants(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += sum(int(f) for f in _stat_fields(child)[11:15]) / CLOCK_TICKS
    return total


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
                children.setdefault(int(_stat_fields(int(entry))[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def machine_busy_s() -> float:
    """CPU seconds all cores of the machine spent busy (not idle or waiting on I/O), from
    /proc/stat: over a window, busy / window = cores in use by everyone, so a shared machine's
    other load shows next to the processes measured."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


# ---------------------------------------------------------------------- the run


def _percentiles(values: F64) -> dict[str, float]:
    if not len(values):
        return {}
    ms = values * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(ms.max())}


def _due(next_at: F64, horizon: float, period: float) -> tuple[I64, F64]:
    """Every (device row, scheduled time) due before `horizon`; advances `next_at`."""
    idx = np.flatnonzero(next_at < horizon)
    if not len(idx):
        return idx, np.empty(0)
    count = (np.ceil((horizon - next_at[idx]) / period)).astype(np.int64)
    rows = np.repeat(idx, count)
    step = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    sched = next_at[rows] + step * period
    next_at[idx] += count * period
    return rows, sched


async def run_load(
    cfg: LoadConfig,
    progress: Callable[[str], None] | None = None,
    transport: Callable[[Fleet], Transport] | None = None,
    mark: Callable[[str], None] | None = None,
) -> LoadReport:
    """Connects the fleet, reports at `cfg.rate` for `cfg.duration_s`, waits for the last acks.

    `mark` is called with "start" once every device is connected, just before the first report
    is scheduled, and with "end" once the last answer is in (or the drain gave up): a caller
    reads other processes' CPU there, over the same window as `window_cpu_s`, leaving out the
    connection handshakes.
    """
    fleet = Fleet(cfg)
    link = (transport or TcpTransport)(fleet)
    cpu0 = time.process_time()
    await link.connect()
    connected = np.flatnonzero(fleet.alive)
    refused = cfg.devices - len(connected)
    if not len(connected):
        await link.close()
        return LoadReport(cfg.devices, 0, 0, 0, refused, 0.0, cfg.rate, 0.0, {}, refused)
    period = len(connected) / cfg.rate  # seconds between two reports of one device
    hostile_done = asyncio.Event()
    hostile_task = None
    if cfg.faults is not None and cfg.faults.hostile:
        hostile_task = asyncio.create_task(
            run_hostiles(
                cfg.host,
                cfg.port,
                cfg.faults.hostile,
                [fleet.terminals[int(d)] for d in connected],
                cfg.edition,
                hostile_done,
                cfg.seed,
            )
        )
    if mark is not None:
        mark("start")
    window_cpu0 = time.process_time()
    start = time.monotonic()
    next_at = start + np.random.default_rng(cfg.seed).uniform(0, period, len(connected))
    end = start + cfg.duration_s
    wall0_ms = time.time_ns() // 10**6
    last_progress = start
    while True:
        now = time.monotonic()
        horizon = min(now, end)
        rows, sched = _due(next_at, horizon, period)
        if len(rows):
            fleet.lag_parts.append(time.monotonic() - sched)
            fleet.send(connected[rows], sched, wall0_ms, start)
        sent_until = time.monotonic()
        link.poll()
        fleet.take_inbox(now)
        if progress is not None and now - last_progress >= 1.0:
            last_progress = now
            progress(_progress_line(fleet, now - start))
        if now >= end:
            break
        # Sleep to the next due report (at least 1 ms, so a high rate goes out in batches).
        wake = min(float(next_at.min()), end) - time.monotonic()
        await asyncio.sleep(min(cfg.tick_s, max(0.001, wake)))
    # Every report scheduled in [start, end) is sent by now: a loop that fell behind shows
    # as a longer window, hence a lower achieved rate.
    sending_s = max(cfg.duration_s, sent_until - start)
    late_s = sent_until - end
    deadline = time.monotonic() + cfg.drain_timeout_s
    while fleet.acked + fleet.errors < fleet.sent and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        link.poll()
        fleet.take_inbox(time.monotonic())
    window_s = time.monotonic() - start
    window_cpu_s = time.process_time() - window_cpu0
    if mark is not None:
        mark("end")
    faults = None
    if cfg.faults is not None:
        faults = {"clock": cfg.faults.kinds()}
        if hostile_task is not None:
            hostile_done.set()
            faults.update((await hostile_task).to_json())
    await link.close()
    latencies = np.concatenate(fleet.latency_parts) if fleet.latency_parts else np.empty(0)
    unanswered = max(0, fleet.sent - fleet.acked)
    if progress is not None:
        progress(_progress_line(fleet, time.monotonic() - start) + f" done (late {late_s:.3f}s)")
    return LoadReport(
        devices=cfg.devices,
        connected=len(connected),
        sent=fleet.sent,
        acknowledged=fleet.acked,
        errors=fleet.errors + unanswered,
        duration_s=sending_s,
        offered_rate=cfg.rate,
        achieved_rate=fleet.sent / sending_s,
        ack_latency_ms=_percentiles(latencies),
        refused=refused,
        commands_answered=fleet.commands,
        unanswered=unanswered,
        cpu_s=time.process_time() - cpu0,
        send_lag_ms=_percentiles(
            np.concatenate(fleet.lag_parts) if fleet.lag_parts else np.empty(0)
        ),
        window_s=window_s,
        window_cpu_s=window_cpu_s,
        overrun=fleet.overrun,
        faults=faults,
    )


def _progress_line(fleet: Fleet, elapsed_s: float) -> str:
    rate = fleet.sent / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"t={elapsed_s:6.1f}s sent={fleet.sent:,} acked={fleet.acked:,} "
        f"rate={rate:,.0f}/s errors={fleet.errors:,}"
    )


def run(
    cfg: LoadConfig,
    progress: Callable[[str], None] | None = None,
    transport: Callable[[Fleet], Transport] | None = None,
    mark: Callable[[str], None] | None = None,
) -> LoadReport:
    """Blocking entry point, on uvloop when it is installed.

    The collector runs rarely meanwhile: its pauses would show up as acknowledgement latency
    that no server caused."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        with contextlib.suppress(ImportError):
            import uvloop

            return uvloop.run(run_load(cfg, progress, transport, mark))
        return asyncio.run(run_load(cfg, progress, transport, mark))
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


__all__ = [
    "Answers",
    "Fleet",
    "Handshake",
    "LoadConfig",
    "LoadReport",
    "TcpTransport",
    "Transport",
    "machine_busy_s",
    "parse_answers",
    "process_cpu_s",
    "ring_size",
    "run",
    "run_load",
]
