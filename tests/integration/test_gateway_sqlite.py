"""The gateway on the embedded store: register → authenticate → report → acknowledged → stored."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ingest.gateway import Gateway, GatewayConfig
from ingest.journal import Journal
from ingest.jt808 import Edition
from ingest.link import Link
from store import Device, open_store
from tests.support.device import TestDevice

T0_MS = 1_735_689_600_000


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    data = tmp_path / "data"
    open_store(None, data, migrate=True).close()
    journal = Journal(data / "journal", max_bytes=64 * 1024 * 1024)
    gw = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=True),
        journal=journal,
        store_factory=lambda: open_store(None, data),
    )
    host, port = await gw.start()
    gw.config = GatewayConfig(host=host, port=port, auto_register=True)
    try:
        yield gw
    finally:
        await gw.stop()
        journal.close()


@pytest.mark.parametrize("edition", [Edition.V2013, Edition.V2019])
async def test_reports_are_acknowledged_then_stored(gateway: Gateway, edition: Edition) -> None:
    device = TestDevice(
        "13900000001" if edition is Edition.V2013 else "1390000000100000001", edition
    )
    await device.connect(gateway.config.host, gateway.config.port)
    assert await device.login()
    serials = [
        await device.report(121.47 + i * 1e-4, 31.23, T0_MS + i * 10_000, speed_kmh=30.0)
        for i in range(50)
    ]
    await device.wait_acks(serials)
    assert all(device.acked[s] == 0 for s in serials)
    await device.close()
    await gateway.stop()
    store = open_store(None, Path(gateway.journal.directory).parent)
    try:
        track = store.track(device.conn.peer_terminal or _digits(device), T0_MS, T0_MS + 10**9)
    finally:
        store.close()
    assert len(track) == 50


def _digits(device: TestDevice) -> str:
    width = 20 if device.edition is Edition.V2019 else 12
    return device.terminal.rjust(width, "0")


async def test_a_bad_auth_code_is_refused(gateway: Gateway) -> None:
    device = TestDevice("13900000002")
    await device.connect(gateway.config.host, gateway.config.port)
    from ingest.jt808.messages import Authenticate

    serial = await device.send(Authenticate("not-the-code"))
    await device.wait_acks([serial])
    assert device.acked[serial] == 1
    await device.close()


async def test_an_unknown_terminal_is_refused_without_auto_registration(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = open_store(None, data, migrate=True)
    store.upsert_device(Device(terminal="013900000009"))
    store.close()
    journal = Journal(data / "journal", max_bytes=1 << 26)
    gw = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=False),
        journal=journal,
        store_factory=lambda: open_store(None, data),
    )
    host, port = await gw.start()
    try:
        stranger = TestDevice("13900000003")
        await stranger.connect(host, port)
        assert not await stranger.login()
        known = TestDevice("13900000009")
        await known.connect(host, port)
        assert await known.login()
        await stranger.close()
        await known.close()
    finally:
        await gw.stop()
        journal.close()
    _ = asyncio


class _RecordingLink(Link):
    """A link whose transport is a buffer: the test reads what the gateway wrote."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway, gateway.new_session(), "test")
        self.data = bytearray()

    def transmit(self, data: bytes) -> None:
        self.data += data

    def close_transport(self) -> None:
        pass


async def test_stopping_acknowledges_every_report_already_read(tmp_path: Path) -> None:
    from ingest.jt808 import LocationReport, encode_frame
    from ingest.jt808.messages import Authenticate, Register

    data = tmp_path / "data"
    open_store(None, data, migrate=True).close()
    journal = Journal(data / "journal", max_bytes=1 << 26)
    gw = Gateway(
        GatewayConfig(host="127.0.0.1", port=0, auto_register=True),
        journal=journal,
        store_factory=lambda: open_store(None, data),
    )
    await gw.start()
    link = _RecordingLink(gw)
    assert gw.link_opened(link, None)
    link.receive(
        encode_frame(Register(31, 0, "M", "X", "ID", 1, "P"), terminal="1", serial=0),
        time.monotonic(),
    )
    device = gw.registry.get("000000000001")
    assert device is not None
    link.receive(
        encode_frame(Authenticate(device.auth_code or ""), terminal="1", serial=1),
        time.monotonic(),
    )
    count = 10_000  # more than one decode slice
    frames = b"".join(
        encode_frame(
            LocationReport.at(lon=121.4, lat=31.2, time_ms=T0_MS + i * 1000),
            terminal="1",
            serial=(2 + i) & 0xFFFF,
        )
        for i in range(count)
    )
    link.receive(frames, time.monotonic())  # read, not yet committed
    link.data.clear()
    await gw.stop()
    journal.close()
    acks = bytes(link.data).count(b"\x7e\x80\x01")
    assert acks == count
