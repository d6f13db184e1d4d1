"""The gateway end to end on both stores (SQLite and the real PostgreSQL), with simulated devices.

Register → authenticate → report → stored for both editions; refusals; bad input on one
connection; backfill and out-of-order flags; commands to online and offline terminals; a
second connection replacing the first; idle connections closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808 import Edition, LocationReport, ParamId
from ingest.jt808.messages import (
    BatchLocationReport,
    LocationQuery,
    LocationQueryReply,
    SetParameters,
    TemporaryTracking,
    TerminalControl,
    TerminalGeneralResponse,
)
from positions import Flag, PositionBatch
from simulators.device import Device, Shuttle
from simulators.wire import Clock, run_tcp
from store import CommandState, Store, migrate, open_store
from store import Device as StoredDevice
from tests.support.device import TestDevice

T0_MS = 1_735_689_600_000


@dataclass
class Running:
    gateway: Gateway
    host: str
    port: int
    store: Callable[[], Store]

    def stored(self, terminal: str) -> list[tuple[int, int]]:
        """(fix time, flags) of the terminal's stored positions, in time order."""
        store = self.store()
        try:
            track = store.track(terminal, 0, 2**62)
        finally:
            store.close()
        return list(zip(track.time_ms.tolist(), track.flags.tolist(), strict=True))


async def _drained(gateway: Gateway, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while gateway.journal.depth_bytes:
        assert time.monotonic() < deadline, "the drain did not catch up"
        await asyncio.sleep(0.05)


@pytest.fixture
async def running(store_url: str | None, tmp_path: Path) -> AsyncIterator[Running]:
    async with _gateway(store_url, tmp_path, GatewayConfig(port=0, auto_register=True)) as r:
        yield r


@contextlib.asynccontextmanager
async def _gateway(url: str | None, data: Path, config: GatewayConfig) -> AsyncIterator[Running]:
    migrate(url, data)
    journal = Journal(data / "journal", max_bytes=1 << 26)

    def factory() -> Store:
        return open_store(url, data)

    gateway = Gateway(config, journal=journal, store_factory=factory)
    host, port = await gateway.start()
    try:
        yield Running(gateway, host, port, factory)
    finally:
        await gateway.stop()
        journal.close()


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
async def test_a_simulated_device_registers_authenticates_and_every_ack_is_a_stored_row(
    running: Running, edition: Edition
) -> None:
    terminal = "13912340001" if edition is Edition.V2013 else "1391234000100000001"
    device = Device(
        terminal, Shuttle(121.47, 31.23, drive_s=120, park_s=60), edition=edition, start_ms=T0_MS
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_tcp(device, running.host, running.port, Clock.start(60.0, T0_MS), stop)
    )
    deadline = time.monotonic() + 20
    while device.stats.acknowledged < 20 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert device.stats.acknowledged >= 20
    await _drained(running.gateway)
    digits = terminal.rjust(20 if edition is Edition.V2019 else 12, "0")
    rows = running.stored(digits)
    assert len(rows) == device.stats.acknowledged
    assert device.stats.refused == 0


async def test_a_bad_auth_code_and_an_unknown_terminal_are_refused(
    store_url: str | None, tmp_path: Path
) -> None:
    async with _gateway(store_url, tmp_path, GatewayConfig(port=0, auto_register=False)) as r:
        stranger = TestDevice("13900000003")
        await stranger.connect(r.host, r.port)
        assert not await stranger.login()  # 0x8100 result 4: terminal unknown
        from ingest.jt808.messages import Authenticate

        serial = await stranger.send(Authenticate("guess"))
        await stranger.wait_acks([serial])
        assert stranger.acked[serial] == 1
        report = await stranger.report(121.4, 31.2, T0_MS)
        await stranger.wait_acks([report])
        assert stranger.acked[report] == 1  # nothing is accepted before authentication
        await stranger.close()
        assert r.stored("013900000003") == []
        store = r.store()
        try:  # provisioned while the gateway runs (as the API does): now it may register
            store.upsert_device(StoredDevice(terminal="013900000004"))
        finally:
            store.close()
        newcomer = TestDevice("13900000004")
        await newcomer.connect(r.host, r.port)
        assert await newcomer.login()
        await newcomer.close()


async def test_garbage_oversized_and_truncated_frames_disturb_no_other_connection(
    running: Running,
) -> None:
    good = TestDevice("13900000010")
    await good.connect(running.host, running.port)
    assert await good.login()
    vandal = TestDevice("13900000011")
    await vandal.connect(running.host, running.port)
    assert await vandal.login()
    serials = []
    frame = LocationReport.at(lon=121.4, lat=31.2, time_ms=T0_MS)
    from ingest.jt808 import encode_frame

    sound = encode_frame(frame, terminal="13900000011", serial=99)
    attacks = [
        b"\x00\xff" * 50,  # garbage before any flag
        sound[: len(sound) // 2],  # truncated, then a new frame starts
        b"\x7e" + b"\x7d\x7d\x7d" + b"\x7e",  # bad escapes
        b"\x7e" + bytes(range(1, 120)) + b"\x7e",  # wrong check code
    ]
    for i in range(40):
        serials.append(await good.report(121.4 + i * 1e-4, 31.2, T0_MS + i * 10_000))
        if i < len(attacks):
            await vandal.send_raw(attacks[i])
    await vandal.send_raw(b"\x7e" + b"\x01" * 10_000)  # oversized: the vandal is cut off
    await good.wait_acks(serials)
    await vandal.pump(1.0)
    assert vandal.reader is not None
    assert vandal.reader.at_eof()
    # The gateway still serves new connections.
    late = TestDevice("13900000012")
    await late.connect(running.host, running.port)
    assert await late.login()
    for d in (good, vandal, late):
        await d.close()
    await _drained(running.gateway)
    assert len(running.stored("013900000010")) == 40
    rejected = running.gateway.metrics.frames_rejected
    assert sum(s.value for m in rejected.collect() for s in m.samples) >= 3


async def test_backfill_and_late_reports_keep_their_flags_and_latest_stays_newest(
    running: Running,
) -> None:
    device = TestDevice("13900000020")
    await device.connect(running.host, running.port)
    assert await device.login()
    acks = [
        await device.report(121.40, 31.20, T0_MS + 100_000),
        await device.report(121.41, 31.21, T0_MS + 200_000),
    ]
    blind = tuple(
        LocationReport.at(lon=121.3, lat=31.1, time_ms=T0_MS + t) for t in (50_000, 60_000)
    )
    acks.append(await device.send(BatchLocationReport(1, blind)))
    acks.append(await device.report(121.39, 31.19, T0_MS + 150_000))  # late single report
    await device.wait_acks(acks)
    assert all(device.acked[s] == 0 for s in acks)
    await device.close()
    await _drained(running.gateway)
    rows = dict(running.stored("013900000020"))
    assert sorted(rows) == [T0_MS + t for t in (50_000, 60_000, 100_000, 150_000, 200_000)]
    assert rows[T0_MS + 50_000] & Flag.BACKFILL
    assert rows[T0_MS + 60_000] & Flag.BACKFILL
    assert not rows[T0_MS + 150_000] & Flag.BACKFILL
    store = running.store()
    try:
        latest = store.latest(["013900000020"])
    finally:
        store.close()
    assert latest.time_ms.tolist() == [T0_MS + 200_000]


async def test_commands_reach_an_online_terminal_and_its_answers_come_back(
    running: Running,
) -> None:
    device = Device("13900000030", Shuttle(121.5, 31.3), start_ms=T0_MS)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_tcp(device, running.host, running.port, Clock.start(1.0, T0_MS), stop)
    )
    try:
        deadline = time.monotonic() + 10
        while "013900000030" not in running.gateway.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        gw = running.gateway
        outcome = await gw.send_command(
            "013900000030",
            SetParameters.of({ParamId.DEFAULT_INTERVAL_S: 5}),
            timeout_s=5,
        )
        assert outcome.state is CommandState.ACKED
        assert isinstance(outcome.reply, TerminalGeneralResponse)
        assert device.params[ParamId.DEFAULT_INTERVAL_S] == 5
        where = await gw.send_command("013900000030", LocationQuery(), timeout_s=5)
        assert isinstance(where.reply, LocationQueryReply)
        assert abs(where.reply.location.lon - 121.5) < 0.1
        tracking = await gw.send_command("013900000030", TemporaryTracking(5, 60), timeout_s=5)
        assert tracking.state is CommandState.ACKED
        control = await gw.send_command("013900000030", TerminalControl(4), timeout_s=5)
        assert control.state is CommandState.ACKED
    finally:
        stop.set()
        await task


async def test_a_command_for_an_offline_terminal_waits_and_goes_out_on_reconnect(
    running: Running,
) -> None:
    gw = running.gateway
    never_seen = await gw.send_command("013900000041", LocationQuery(), timeout_s=1)
    assert never_seen.state is CommandState.FAILED  # an unknown terminal gets no queue entry
    store = running.store()
    try:
        store.upsert_device(StoredDevice(terminal="013900000040"))  # provisioned, never online
    finally:
        store.close()
    outcome = await gw.send_command(
        "013900000040", SetParameters.of({ParamId.HEARTBEAT_INTERVAL_S: 45}), timeout_s=2
    )
    assert outcome.state is CommandState.QUEUED
    assert outcome.command_id is not None
    device = Device("13900000040", Shuttle(121.5, 31.3), start_ms=T0_MS)
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_tcp(device, running.host, running.port, Clock.start(1.0, T0_MS), stop)
    )
    try:
        deadline = time.monotonic() + 15
        state = None
        while time.monotonic() < deadline:
            store = running.store()
            try:
                command = store.get_command(outcome.command_id)
            finally:
                store.close()
            state = command.state if command else None
            if state is CommandState.ACKED:
                break
            await asyncio.sleep(0.1)
        assert state is CommandState.ACKED
        assert device.params[ParamId.HEARTBEAT_INTERVAL_S] == 45
    finally:
        stop.set()
        await task


async def test_a_second_connection_of_a_terminal_replaces_the_first(running: Running) -> None:
    first = TestDevice("13900000050")
    await first.connect(running.host, running.port)
    assert await first.login()
    second = TestDevice("13900000050")
    await second.connect(running.host, running.port)
    second.auth_code = first.auth_code
    from ingest.jt808.messages import Authenticate

    serial = await second.send(Authenticate(first.auth_code))
    await second.wait_acks([serial])
    assert second.acked[serial] == 0
    await first.pump(1.0)
    assert first.reader is not None
    assert first.reader.at_eof()
    assert running.gateway.sessions["013900000050"] is not None
    await first.close()
    await second.close()


async def test_an_idle_connection_is_closed(tmp_path: Path) -> None:
    config = GatewayConfig(port=0, auto_register=True, idle_timeout_s=0.5)
    async with _gateway(None, tmp_path, config) as r:
        device = TestDevice("13900000060")
        await device.connect(r.host, r.port)
        assert await device.login()
        await asyncio.sleep(2.0)
        await device.pump(0.5)
        assert device.reader is not None
        assert device.reader.at_eof()
        await device.close()


async def test_a_clock_learned_before_a_restart_corrects_the_first_report_after_it(
    store_url: str | None, tmp_path: Path
) -> None:
    """A tracker on UTC: the correction the store holds is used at once after a restart, not
    learned again while its first reports are stored 8 h in the past."""
    hours = 8 * 3_600_000
    now_ms = int(time.time() * 1000)
    migrate(store_url, tmp_path)
    before = PositionBatch.from_columns(
        {
            "device": [0, 0, 0],
            "time_ms": [now_ms - 60_000 + i * 10_000 for i in range(3)],
            "device_time_ms": [now_ms - 60_000 + i * 10_000 - hours for i in range(3)],
            "recv_ms": [now_ms - 60_000 + i * 10_000 + 300 for i in range(3)],
            "flags": [int(Flag.CLOCK_CORRECTED)] * 3,
        }
    )
    seeded = open_store(store_url, tmp_path)
    try:
        seeded.write_positions(before, ["013900000030"])
    finally:
        seeded.close()
    config = GatewayConfig(port=0, auto_register=True)
    async with _gateway(store_url, tmp_path, config) as running:
        device = TestDevice("13900000030")
        await device.connect(running.host, running.port)
        assert await device.login()
        sent_ms = now_ms // 1000 * 1000 - hours + 5_000  # fix times are whole seconds
        await device.wait_acks([await device.report(121.4, 31.2, sent_ms)])
        await device.close()
        await _drained(running.gateway)
        rows = running.stored("013900000030")
    assert rows[-1][0] == sent_ms + hours
    assert rows[-1][1] & Flag.CLOCK_CORRECTED
