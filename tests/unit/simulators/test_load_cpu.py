"""The benchmarks' CPU accounting, checked on real processes that burn known amounts of CPU.

A child burns CPU in a worker thread (so a reading of the main thread alone falls short) and
starts a grandchild that burns more and stays alive (so a reading without the descendants
falls short); each reports its own CPU clock, which the reading from outside must match.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from simulators.load import machine_busy_s, process_cpu_s

THREAD_BURN_S = 0.4
GRANDCHILD_BURN_S = 0.3
TICK_SLACK_S = 0.05  # /proc counts in clock ticks (10 ms), rounded per process

BURN = """
import time
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
"""

GRANDCHILD = BURN + textwrap.dedent(
    f"""
    import sys
    burn({GRANDCHILD_BURN_S})
    print(time.process_time(), flush=True)
    sys.stdin.readline()
    """
)

CHILD = BURN + textwrap.dedent(
    f"""
    import subprocess, sys, threading
    worker = threading.Thread(target=burn, args=({THREAD_BURN_S},))
    worker.start()
    worker.join()
    grand = subprocess.Popen(
        [sys.executable, "-c", {GRANDCHILD!r}],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    grand_cpu = float(grand.stdout.readline())
    print(time.process_time(), grand_cpu, flush=True)
    sys.stdin.readline()
    grand.stdin.close()
    grand.wait()
    """
)


def test_a_process_is_charged_its_threads_and_its_descendants() -> None:
    busy0 = machine_busy_s()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        own, grand = (float(v) for v in child.stdout.readline().split())
        measured = process_cpu_s(child.pid)  # both are blocked on stdin: no CPU from here on
        busy = machine_busy_s() - busy0
    finally:
        child.stdin.close()
        child.wait(30)
        child.stdout.close()
    assert own >= THREAD_BURN_S
    assert grand >= GRANDCHILD_BURN_S
    assert measured == pytest.approx(own + grand, abs=TICK_SLACK_S)
    assert busy >= own + grand - TICK_SLACK_S  # the machine's count holds at least these two


def test_a_reaped_process_cannot_be_read() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(ProcessLookupError):
        process_cpu_s(child.pid)
