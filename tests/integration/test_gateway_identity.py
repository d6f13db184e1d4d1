"""The gateway's side of terminal identity on both stores: what reaches the store, what is
counted and logged, the queued commands an impostor leaves alone, and the storm alert."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from alerts.model import Alert, AlertType
from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808.messages import LocationQuery
from store import CommandState, Device, Store, migrate, open_store
from tests.support.device import TestDevice

T = "013900000401"


@dataclass
class Running:
    gateway: Gateway
    port: int
    url: str | None
    data: Path
    alerts: list[Alert] = field(default_factory=list)

    def device(self) -> Device | None:
        store = self.store()
        try:
            return store.get_device(T)
        finally:
            store.close()

    def store(self) -> Store:
        return open_store(self.url, self.data)


@pytest.fixture
async def running(store_url: str | None, tmp_path: Path) -> AsyncIterator[Running]:
    migrate(store_url, tmp_path)
    journal = Journal(tmp_path / "journal", max_bytes=1 << 26)
    alerts: list[Alert] = []
    gateway = Gateway(
        GatewayConfig(port=0, auto_register=False),
        journal=journal,
        store_factory=lambda: open_store(store_url, tmp_path),
        on_alerts=alerts.extend,
    )
    _, port = await gateway.start()
    try:
        yield Running(gateway, port, store_url, tmp_path, alerts)
    finally:
        await gateway.stop()
        journal.close()


async def eventually_stored(running: Running, **fields: object) -> Device:
    """The device once the gateway's write-through shows `fields`."""
    deadline = time.monotonic() + 10
    while True:
        device = running.device()
        if device is not None and all(getattr(device, k) == v for k, v in fields.items()):
            return device
        assert time.monotonic() < deadline, f"store holds {device}"
        await asyncio.sleep(0.05)


def counted(gateway: Gateway, reason: str) -> float:
    text = generate_latest(gateway.metrics.registry).decode()
    line = f'lienwatch_identity_refusals_total{{reason="{reason}"}} '
    (value,) = [float(x.removeprefix(line)) for x in text.splitlines() if x.startswith(line)]
    return value


async def test_unknown_terminals_are_refused_without_auto_registration(running: Running) -> None:
    stranger = TestDevice(T)
    await stranger.connect("127.0.0.1", running.port)
    try:
        assert not await stranger.login()
        assert stranger.register_result == 4
    finally:
        await stranger.close()
    assert running.device() is None
    assert counted(running.gateway, "unknown_terminal") == 1
    for reason in ("identity_differs", "imei_differs", "bad_code"):  # every label from the start
        assert counted(running.gateway, reason) == 0


async def test_an_impostor_is_refused_counted_logged_and_leaves_code_and_commands(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    store = running.store()
    try:
        store.upsert_device(Device(T, vehicle_id="CAR-1"))  # provisioned through the API
    finally:
        store.close()
    real = TestDevice(T)
    await real.connect("127.0.0.1", running.port)
    assert await real.login()  # takes its identity from its first 0x0100
    recorded = await eventually_stored(running, terminal_id="ID1")
    assert (recorded.maker_id, recorded.model, recorded.auth_code) == ("LW", "T1", real.auth_code)
    await real.close()
    while T in running.gateway.sessions:
        await asyncio.sleep(0.02)
    queued = await running.gateway.send_command(T, LocationQuery(), timeout_s=1)
    assert queued.state is CommandState.QUEUED and queued.command_id is not None

    impostor = TestDevice(T, identity=("LW", "T1", "ID2"))
    await impostor.connect("127.0.0.1", running.port)
    with caplog.at_level(logging.WARNING, logger="lienwatch.gateway"):
        assert not await impostor.login()
    assert impostor.register_result == 3 and impostor.auth_code == ""
    refused = [r.getMessage() for r in caplog.records if "registration refused" in r.getMessage()]
    assert refused == [
        f"registration refused terminal={T} peer={impostor.address} reason=identity_differs"
    ]
    await impostor.close()
    assert counted(running.gateway, "identity_differs") == 1

    await asyncio.sleep(0.2)  # a write-through, had there been one, lands meanwhile
    assert running.device() == recorded  # the code and identity stay
    store = running.store()
    try:
        command = store.get_command(queued.command_id)
    finally:
        store.close()
    assert command is not None and command.state is CommandState.QUEUED

    again = TestDevice(T)  # the real tracker lost its code: it gets the same one back
    await again.connect("127.0.0.1", running.port)
    assert await again.login() and again.auth_code == real.auth_code
    await again.close()


async def test_a_storm_gives_the_gateway_one_alert_and_fewer_takeovers_none(
    running: Running,
) -> None:
    store = running.store()
    try:
        store.upsert_device(Device(T, vehicle_id="CAR-1"))
    finally:
        store.close()
    devices: list[TestDevice] = []
    addresses: list[str] = []
    try:
        for _ in range(3):  # two takeovers of live sessions: not yet a storm
            device = TestDevice(T)
            await device.connect("127.0.0.1", running.port)
            assert await device.login()
            devices.append(device)
            addresses.append(device.address)
        assert running.alerts == []
        for _ in range(4):
            device = TestDevice(T)
            await device.connect("127.0.0.1", running.port)
            assert await device.login()
            devices.append(device)
            addresses.append(device.address)
    finally:
        for device in devices:
            with contextlib.suppress(Exception):
                await device.close()
    (alert,) = running.alerts
    assert (alert.type, alert.device_id, alert.vehicle_id) == (
        AlertType.DEVICE_CONFLICT,
        T,
        "CAR-1",
    )
    assert alert.details["peers"] == [addresses[3], addresses[4]]
