"""Runs `lienwatch` commands as real processes for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

LIENWATCH = str(Path(sys.executable).with_name("lienwatch"))


def start_serve(env: dict[str, str], timeout_s: float = 30.0) -> tuple[subprocess.Popen[str], int]:
    """Starts `lienwatch serve` and returns it with the gateway's port once it listens."""
    proc = subprocess.Popen(
        [LIENWATCH, "serve"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"JT808 gateway listening on [^:]+:(\d+)", line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    raise AssertionError(f"lienwatch serve did not start (exit {proc.poll()})")


def stop(proc: subprocess.Popen[str], sig: int, timeout_s: float = 30.0) -> int:
    """Sends `sig`, waits for the exit and releases the pipe; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    code = proc.wait(timeout_s)
    if proc.stdout is not None:
        proc.stdout.close()
    return code
