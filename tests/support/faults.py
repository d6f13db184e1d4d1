"""Real faults for the data-safety tests: a small tmpfs that fills up, a failing system call.

Both need root (mounting a filesystem, tracing a process), which the test machines and CI are.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a tmpfs and tracing a process need root"
)
NEEDS_STRACE = pytest.mark.skipif(
    shutil.which("strace") is None, reason="strace injects the failing system call"
)


@contextlib.contextmanager
def small_tmpfs(size_bytes: int) -> Iterator[Path]:
    """A fresh tmpfs of `size_bytes` mounted on a temporary directory, unmounted after."""
    where = Path(tempfile.mkdtemp(prefix="lienwatch-tmpfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(directory: Path, name: str = "filler") -> Path:
    """Writes zeros into `directory/name` until its filesystem is full; returns the file."""
    path = directory / name
    chunk = b"\0" * 65536
    with path.open("ab", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError:
                break
        while True:  # the last few bytes a whole chunk did not fit
            try:
                fh.write(b"\0" * 512)
            except OSError:
                break
    return path


def strace_inject(pid: int, syscall: str, error: str = "EIO") -> subprocess.Popen[bytes]:
    """Attaches strace to `pid` so every later `syscall` of any of its threads fails with
    `error` (the kernel call is not made); returns once every thread is traced. Terminate the
    returned process to detach."""
    tracer = subprocess.Popen(
        [
            "strace", "-f", "-qq", "-p", str(pid),
            "-e", f"trace={syscall}", "-e", f"inject={syscall}:error={error}",
            "-o", "/dev/null",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _all_traced(pid):
        if tracer.poll() is not None or time.monotonic() > deadline:
            tracer.kill()
            raise AssertionError(f"strace could not attach to {pid}")
        time.sleep(0.05)
    return tracer


def _all_traced(pid: int) -> bool:
    tasks = list(Path(f"/proc/{pid}/task").iterdir())
    for task in tasks:
        with contextlib.suppress(OSError):
            status = (task / "status").read_text()
            tracer = next(line for line in status.splitlines() if line.startswith("TracerPid:"))
            if tracer.split()[1] == "0":
                return False
    return bool(tasks)
