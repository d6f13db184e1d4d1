"""The process around `lienwatch serve` (and `demo`): logging, the event loop, signals, the
stop budget. Which parts run, and how they are wired, is lienwatch.services (by role).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time

from lienwatch.services import Services, start_services
from lienwatch.settings import Settings

__all__ = ["Services", "serve", "start_services"]

log = logging.getLogger("lienwatch")


def install_event_loop_policy() -> None:
    """uvloop when it is installed: a faster loop for thousands of connections."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


async def wait_for_stop(failed: asyncio.Event | None = None) -> bool:
    """Returns on SIGINT or SIGTERM (False), or once `failed` is set (True)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waits = [asyncio.ensure_future(stop.wait())]
    if failed is not None:
        waits.append(asyncio.ensure_future(failed.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return failed is not None and failed.is_set()


def tune_garbage_collector() -> None:
    """Long-lived start-up objects leave the collector's scans, and young collections run less
    often: a full collection over a large heap otherwise stalls every connection at once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # The event loop thread takes the interpreter back from the drain and commit threads
    # after 1 ms instead of 5: their batches never hold every connection waiting.
    sys.setswitchinterval(0.001)


# SIGTERM to exit, at any time: an orchestrator kills a process that takes longer. What was
# not stored by then waits in the journal (fsynced) for the next start.
STOP_BUDGET_S = 4.0
EXIT_STOP_OVERDUE = 0  # a stop that overran is still a stop asked for


async def serve(settings: Settings) -> None:
    if settings.nice:  # before any thread starts: every thread of the process inherits it
        os.nice(settings.nice)
    services = await start_services(settings)
    tune_garbage_collector()
    if services.gateway_address is not None:
        host, port = services.gateway_address
        print(f"lienwatch: JT808 gateway listening on {host}:{port}", flush=True)
    if services.api_address is not None:
        api_host, api_port = services.api_address
        print(f"lienwatch: API listening on http://{api_host}:{api_port}", flush=True)
    if services.admin_key is not None:  # created at this start: shown once, stored hashed
        print(f"lienwatch: admin API key (shown once): {services.admin_key}", flush=True)
    roles = ",".join(r for r in ("gateway", "detector", "api") if r in settings.role_set)
    print(f"lienwatch: running {roles}", flush=True)
    gateway = services.gateway
    failure = None
    try:
        if await wait_for_stop(gateway.failed if gateway is not None else None):
            assert gateway is not None
            failure = gateway.group.failure
    finally:
        print("lienwatch: stopping", flush=True)
        try:
            await asyncio.wait_for(services.close(), STOP_BUDGET_S)
        except TimeoutError:
            # Worker threads stuck in a call (a database that stopped answering) would hold
            # the interpreter's exit: leave without them.
            log.error("stopping took over %.0f s: exiting now", STOP_BUDGET_S)
            if services.journal is not None:
                services.journal.close()
            logging.shutdown()
            sys.stdout.flush()
            os._exit(EXIT_STOP_OVERDUE if failure is None else 1)
    if failure is not None:  # nothing more can be made durable: exit, restart recovers
        raise failure
