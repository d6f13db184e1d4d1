"""`lienwatch serve` when the journal's disk fails, through real TCP: a full disk (a small tmpfs
filled, then freed) holds acknowledgements and reading until space returns, with no restart; a
failed fdatasync (failed by strace in the kernel's own call) stops acknowledging, makes serve
exit 1, and a restart stores every report that had been acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support.device import TestDevice
from tests.support.faults import NEEDS_ROOT, NEEDS_STRACE, fill, small_tmpfs, strace_inject
from tests.support.processes import api_url, start_serve, stop

pytestmark = [NEEDS_ROOT, pytest.mark.db, pytest.mark.slow]
T0_MS = 1_735_689_600_000
TERMINAL = "13900000066"


def env_for(pg_url: str, data: Path) -> dict[str, str]:
    return {
        "LIENWATCH_DATABASE_URL": pg_url,
        "LIENWATCH_DATA_DIR": str(data),
        "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
        "LIENWATCH_AUTO_REGISTER": "true",
    }


def stored_times(pg_url: str) -> set[int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT p.fix_time FROM positions p JOIN devices d ON d.id = p.device_id"
            " WHERE d.terminal = %s",
            (TERMINAL.rjust(12, "0"),),
        ).fetchall()
    return {_ms(row[0]) for row in rows}


def _ms(value: object) -> int:
    if isinstance(value, datetime):
        return int(value.astimezone(UTC).timestamp() * 1000)
    return int(value)  # type: ignore[call-overload]


async def wait_stored(pg_url: str, want: set[int], timeout_s: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    got = stored_times(pg_url)
    while not want <= got and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        got = stored_times(pg_url)
    return got


def metric(base: str, name: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


async def send(device: TestDevice, first: int, count: int) -> dict[int, int]:
    """Reports with fix times T0 + (first + i) s; serial -> fix time."""
    sent = {}
    for i in range(first, first + count):
        t = T0_MS + i * 1000
        sent[await device.report(121.4 + i * 1e-5, 31.2, t)] = t
    return sent


async def listen(device: TestDevice, seconds: float) -> None:
    """Takes in answers for `seconds`, or until the server goes away."""
    until = time.monotonic() + seconds
    with contextlib.suppress(ConnectionError):
        while time.monotonic() < until:
            await device.pump(max(0.0, until - time.monotonic()))


async def test_a_full_disk_holds_acknowledgements_until_space_returns(
    pg_url: str, tmp_path: Path
) -> None:
    with small_tmpfs(8 << 20) as disk:
        proc, port = start_serve(env_for(pg_url, disk / "data"))
        base = api_url(proc)
        device = TestDevice(TERMINAL)
        try:
            await device.connect("127.0.0.1", port)
            assert await device.login()
            before = await send(device, 0, 20)
            await device.wait_acks(list(before))
            filler = fill(disk)
            held = await send(device, 20, 300)
            await listen(device, 2.0)
            acked_while_full = sum(s in device.acked for s in held)
            assert acked_while_full < len(held)  # the record the disk refused is not answered
            assert metric(base, "lienwatch_journal_out_of_space") == 1
            assert metric(base, "lienwatch_reading_paused") == 1
            filler.unlink()
            await device.wait_acks(list(held), timeout_s=30)  # no restart, no resend
            assert all(device.acked[s] == 0 for s in held)
            assert metric(base, "lienwatch_journal_out_of_space") == 0
            want = set(before.values()) | set(held.values())
            assert await wait_stored(pg_url, want) == want
        finally:
            await device.close()
            code = stop(proc, signal.SIGTERM)
    assert code == 0


@NEEDS_STRACE
async def test_a_failed_fsync_stops_serve_and_a_restart_stores_every_acknowledged_report(
    pg_url: str, tmp_path: Path
) -> None:
    env = env_for(pg_url, tmp_path / "data")
    proc, port = start_serve(env)
    device = TestDevice(TERMINAL)
    tracer = None
    try:
        await device.connect("127.0.0.1", port)
        assert await device.login()
        before = await send(device, 0, 50)
        await device.wait_acks(list(before))
        tracer = strace_inject(proc.pid, "fdatasync")
        after = await send(device, 50, 50)
        await listen(device, 3.0)
        code = proc.wait(30)
    finally:
        await device.close()
        if tracer is not None:
            tracer.wait(30)
        code = stop(proc, signal.SIGKILL)
    assert code == 1
    assert not any(s in device.acked for s in after)  # nothing acknowledged after the fault
    proc, _ = start_serve(env)
    try:
        acked = set(before.values())
        assert acked <= await wait_stored(pg_url, acked)
    finally:
        assert stop(proc, signal.SIGTERM) == 0
