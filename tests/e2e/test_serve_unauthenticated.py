"""`lienwatch serve` under connections that never log in: 2,000 silent sockets are closed at the
5 s handshake deadline, memory stays bounded, and a fleet reporting beside them loses no
acknowledgement."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.processes import start_serve, stop

pytestmark = pytest.mark.slow
LIENWATCH = str(Path(sys.executable).parent / "lienwatch")
SILENT = 2000
DEADLINE_S = 5.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def still_open(sock: socket.socket) -> bool:
    """False once the server closed its end (EOF or reset)."""
    try:
        return sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def test_silent_connections_close_at_the_deadline_while_a_fleet_keeps_every_ack(
    tmp_path: Path,
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SILENT + 500:
        pytest.skip(f"{SILENT} sockets need more open files than the hard limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, SILENT + 500), hard))
    proc, port = start_serve(
        {
            "LIENWATCH_DATA_DIR": str(tmp_path / "data"),
            "LIENWATCH_JT808_LISTEN": "127.0.0.1:0",
            "LIENWATCH_AUTO_REGISTER": "true",
            "LIENWATCH_JT808_HANDSHAKE_TIMEOUT_S": str(DEADLINE_S),
        }
    )
    sockets: list[socket.socket] = []
    peak = [rss_bytes(proc.pid)]
    before = peak[0]
    done = threading.Event()

    def watch_memory() -> None:
        while not done.wait(0.25):
            with contextlib.suppress(OSError):
                peak.append(rss_bytes(proc.pid))

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    try:
        fleet = subprocess.Popen(
            [
                LIENWATCH, "simulate", "--target", f"tcp://127.0.0.1:{port}",
                "--devices", "100", "--rate", "1000", "--duration", "12",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        opened_at = time.monotonic()
        for _ in range(SILENT):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.settimeout(None)  # blocking: MSG_DONTWAIT alone decides, never a wait
            sockets.append(sock)
        opened = time.monotonic() - opened_at
        time.sleep(max(0.0, 15.0 - (time.monotonic() - opened_at)))
        left = sum(still_open(s) for s in sockets)
        out, _ = fleet.communicate(timeout=60)
    finally:
        done.set()
        for sock in sockets:
            sock.close()
        code = stop(proc, 15)
    assert opened < 10.0, f"opening {SILENT} connections took {opened:.1f} s"
    assert left <= SILENT // 100, f"{left} of {SILENT} silent connections still open after 15 s"
    grown = max(peak) - before
    print(f"silent connections open after 15 s: {left}; serve grew {grown / 2**20:.1f} MiB")
    assert grown < 200 * 1024 * 1024, f"serve grew by {grown / 2**20:.0f} MiB"
    report = json.loads(out)
    assert fleet.returncode == 0
    assert report["sent"] > 0
    assert report["acknowledged"] == report["sent"]
    assert report["errors"] == 0
    assert code == 0
