"""Runs `lienwatch` commands as real processes for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Started:
    """A `serve` process of some roles, with what it printed: the gateway's port and the
    API's URL for the roles it runs, the admin key when it made one."""

    proc: subprocess.Popen[str]
    port: int | None
    api: str | None
    key: str | None


def start_roles(
    env: dict[str, str], timeout_s: float = 30.0, log_to: Path | None = None
) -> Started:
    """Starts `lienwatch serve` with whatever roles `env` gives and returns once it printed
    which it runs (every part listens by then); its logs go to `log_to` when given."""
    env = {"LIENWATCH_API_LISTEN": "127.0.0.1:0", **env}
    log = log_to.open("a") if log_to is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [LIENWATCH, "serve"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    finally:
        if log_to is not None and not isinstance(log, int):
            log.close()
    port = api = key = None
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if found := re.search(r"JT808 gateway listening on [^:]+:(\d+)", line):
            port = int(found.group(1))
        elif found := re.search(r"API listening on (\S+)", line):
            api = found.group(1)
        elif found := re.search(r"admin API key \(shown once\): (\S+)", line):
            key = found.group(1)
        elif line.startswith("lienwatch: running "):
            return Started(proc, port, api, key)
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
