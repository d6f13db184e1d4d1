"""A `lienwatch serve` started by a benchmark: what it prints at its first start."""

from __future__ import annotations

import re
import subprocess
import time


def serve_lines(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """The gateway port, API URL and admin key `serve` prints at its first start."""
    assert proc.stdout is not None
    port = api = key = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (port is None or api is None or key is None):
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if found := re.search(r"JT808 gateway listening on [^:]+:(\d+)", line):
            port = int(found.group(1))
        elif found := re.search(r"API listening on (\S+)", line):
            api = found.group(1)
        elif found := re.search(r"admin API key \(shown once\): (\S+)", line):
            key = found.group(1)
    if port is None or api is None or key is None:
        proc.kill()
        raise RuntimeError("serve did not print its port, API address and admin key")
    return port, api, key


def role_lines(proc: subprocess.Popen[str]) -> tuple[int | None, str | None, str | None]:
    """What a `serve` of some roles prints at its first start, read up to the line saying
    which it runs: the gateway port, API URL and admin key it printed (None for a part it
    does not run)."""
    assert proc.stdout is not None
    port = api = key = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if found := re.search(r"JT808 gateway listening on [^:]+:(\d+)", line):
            port = int(found.group(1))
        elif found := re.search(r"API listening on (\S+)", line):
            api = found.group(1)
        elif found := re.search(r"admin API key \(shown once\): (\S+)", line):
            key = found.group(1)
        elif line.startswith("lienwatch: running "):
            return port, api, key
    proc.kill()
    raise RuntimeError("serve did not say which roles it runs")
