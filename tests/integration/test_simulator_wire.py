"""Simulated devices and load mode over real TCP sockets against a minimal in-test platform."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ingest.jt808 import Edition, Jt808Connection, MessageReceived, Role
from ingest.jt808.ids import ParamId
from ingest.jt808.messages import (
    Authenticate,
    LocationQuery,
    LocationQueryReply,
    LocationReport,
    Message,
    Register,
    RegisterResponse,
    SetParameters,
    TerminalGeneralResponse,
)
from simulators.device import Device, Habits, Parked
from simulators.load import LoadConfig, run_load
from simulators.wire import Clock, run_tcp

T0_MS = 1_735_689_600_000


@dataclass
class Peer:
    """A tiny platform: registers anyone with code "abc", answers everything, records it."""

    commands: list[Message] = field(default_factory=list)
    close_after_reports: int | None = None
    messages: list[tuple[int, Message]] = field(default_factory=list)  # (connection no, message)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.writers.append(writer)
        conn = Jt808Connection(Role.PLATFORM)
        reports = 0
        try:
            while data := await reader.read(65536):
                conn.receive_data(data)
                for event in conn.events():
                    if not isinstance(event, MessageReceived):
                        continue
                    message = event.message
                    self.messages.append((number, message))
                    if isinstance(message, Register):
                        conn.send(RegisterResponse(event.header.serial, 0, "abc"))
                    elif isinstance(message, TerminalGeneralResponse | LocationQueryReply):
                        pass
                    else:
                        conn.answer(event.header)
                        if isinstance(message, Authenticate):
                            for command in self.commands:
                                conn.send(command)
                        if isinstance(message, LocationReport):
                            reports += 1
                writer.write(conn.data_to_send())
                if self.close_after_reports is not None and reports >= self.close_after_reports:
                    self.close_after_reports = None
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass  # the test is over
        finally:
            writer.close()

    def of_type(self, kind: type) -> list[tuple[int, Message]]:
        return [(n, m) for n, m in self.messages if isinstance(m, kind)]


@contextlib.asynccontextmanager
async def serve(peer: Peer) -> AsyncIterator[int]:
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in peer.writers:
            writer.close()
        await server.wait_closed()


async def wait_for(condition: object, timeout_s: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout_s)


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
async def test_device_registers_authenticates_and_reports_over_tcp(edition: Edition) -> None:
    peer = Peer()
    device = Device(
        "13900000077", Parked(121.5, 31.2), Habits(parked_interval_s=10), edition=edition
    )
    stop = asyncio.Event()
    async with serve(peer) as port:
        task = asyncio.create_task(run_tcp(device, "127.0.0.1", port, Clock.start(20.0), stop))
        await wait_for(lambda: len(peer.of_type(LocationReport)) >= 3)
        stop.set()
        await asyncio.wait_for(task, 5)
    kinds = [type(m).__name__ for _, m in peer.messages[:3]]
    assert kinds == ["Register", "Authenticate", "LocationReport"]
    auth = peer.of_type(Authenticate)[0][1]
    assert isinstance(auth, Authenticate)
    assert auth.auth_code == "abc"
    assert device.stats.acknowledged >= 3


async def test_device_reconnects_after_the_peer_closes_and_reuses_its_code() -> None:
    peer = Peer(close_after_reports=2)
    habits = Habits(parked_interval_s=10, reconnect_min_s=1.0, reconnect_jitter=0.0)
    device = Device("13900000078", Parked(121.5, 31.2), habits)
    stop = asyncio.Event()
    async with serve(peer) as port:
        task = asyncio.create_task(run_tcp(device, "127.0.0.1", port, Clock.start(20.0), stop))
        await wait_for(lambda: any(n == 2 for n, _ in peer.of_type(LocationReport)))
        stop.set()
        await asyncio.wait_for(task, 5)
    assert peer.connections == 2
    assert len(peer.of_type(Register)) == 1
    second = [m for n, m in peer.messages if n == 2]
    assert isinstance(second[0], Authenticate)
    assert second[0].auth_code == "abc"


async def test_load_mode_reports_are_all_acknowledged_and_commands_answered() -> None:
    peer = Peer(commands=[LocationQuery(), SetParameters.of({ParamId.DEFAULT_INTERVAL_S: 5})])
    async with serve(peer) as port:
        cfg = LoadConfig("127.0.0.1", port, devices=20, rate=400.0, duration_s=1.0, seed=3)
        report = await run_load(cfg)
    assert report.connected == 20
    assert report.sent == 400
    assert report.acknowledged == 400
    assert report.errors == 0
    assert report.commands_answered == 40
    assert len(peer.of_type(LocationQueryReply)) == 20
    answers = peer.of_type(TerminalGeneralResponse)
    assert len(answers) == 20
    assert {m.answer_id for _, m in answers} == {0x8103}  # type: ignore[attr-defined]
    assert report.ack_latency_ms["p50"] > 0


async def test_load_mode_marks_the_window_after_connecting_and_after_the_last_answer() -> None:
    peer = Peer()
    seen: list[tuple[str, int, int]] = []  # (mark, connections, reports received)
    async with serve(peer) as port:
        cfg = LoadConfig("127.0.0.1", port, devices=10, rate=200.0, duration_s=0.5, seed=3)

        def mark(name: str) -> None:
            seen.append((name, peer.connections, len(peer.of_type(LocationReport))))

        report = await run_load(cfg, mark=mark)
    assert seen == [("start", 10, 0), ("end", 10, 100)]
    assert report.acknowledged == 100
    assert report.window_s >= cfg.duration_s
    assert 0 < report.window_cpu_s <= report.cpu_s
