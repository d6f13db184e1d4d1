"""Runs `lienwatch` commands as real processes for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

LIENWATCH = str(Path(sys.executable).with_name("lienwatch"))
_API_URLS: dict[int, str] = {}


def api_url(proc: subprocess.Popen[str]) -> str:
    """The base URL of the API of a process started by `start_serve`."""
    return _API_URLS[proc.pid]


def start_serve(env: dict[str, str], timeout_s: float = 30.0) -> tuple[subprocess.Popen[str], int]:
    """Starts `lienwatch serve` and returns it with the gateway's port once it listens.

    The API listens on a free port too unless `env` names one; `api_url` reads it back."""
    env = {"LIENWATCH_API_LISTEN": "127.0.0.1:0", **env}
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
            gateway_port = int(found.group(1))
            api = re.search(r"API listening on (\S+)", proc.stdout.readline())
            if api:
                _API_URLS[proc.pid] = api.group(1)
            return proc, gateway_port
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
